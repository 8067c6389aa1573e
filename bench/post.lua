-- wrk script: POST /multivac/data with a distinct datum per request.
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/multivac/data",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "data=bench+datum+" .. counter)
end
