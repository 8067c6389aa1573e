// mongo-init Job (mongosh --nodb): initiate the replica set rs0 once, wait for a
// primary, then create or update the users. Safe to run any number of times.
// Environment: MONGO_REPLICAS, MONGO_DB_NAME, MONGO_ROOT_USERNAME,
// MONGO_ROOT_PASSWORD, MONGO_APP_PASSWORD, MONGO_BACKUP_PASSWORD.

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function retry(what, fn, tries = 60, delayMs = 5000) {
  for (let i = 1; ; i++) {
    try {
      return fn();
    } catch (e) {
      if (i >= tries) throw e;
      print(`${what}: ${e.message}; retrying (${i}/${tries})`);
      sleep(delayMs);
    }
  }
}

const replicas = parseInt(env("MONGO_REPLICAS"), 10);
const cred = `${encodeURIComponent(env("MONGO_ROOT_USERNAME"))}:${encodeURIComponent(env("MONGO_ROOT_PASSWORD"))}`;
const hosts = [];
for (let i = 0; i < replicas; i++) hosts.push(`mongo-${i}.mongo:27017`);

// 1. The set: initiate from mongo-0 unless it already has a configuration.
const first = retry("connect to mongo-0", () => {
  const c = new Mongo(`mongodb://${cred}@${hosts[0]}/admin?directConnection=true&authSource=admin`);
  c.getDB("admin").runCommand({ ping: 1 });
  return c;
});
const status = first.getDB("admin").runCommand({ replSetGetStatus: 1 });
if (status.ok === 1) {
  print(`replica set ${status.set} already initiated (${status.members.length} members)`);
} else if (status.codeName === "NotYetInitialized") {
  const members = hosts.map((host, i) => ({ _id: i, host }));
  const r = retry("replSetInitiate", () => {
    const res = first.getDB("admin").runCommand({ replSetInitiate: { _id: "rs0", members } });
    if (res.ok !== 1 && res.codeName !== "AlreadyInitialized") throw new Error(JSON.stringify(res));
    return res;
  });
  print(`replSetInitiate: ${JSON.stringify(r)}`);
} else {
  throw new Error(`replSetGetStatus: ${JSON.stringify(status)}`);
}

// 2. The users, through the primary (the driver finds it).
const rs = retry("connect to the primary", () => {
  const c = new Mongo(`mongodb://${cred}@${hosts.join(",")}/admin?replicaSet=rs0&authSource=admin`);
  if (!c.getDB("admin").runCommand({ hello: 1 }).primary) throw new Error("no primary yet");
  return c;
});
const admin = rs.getDB("admin");

function upsertUser(name, pwd, roles) {
  retry(`user ${name}`, () => {
    if (admin.getUser(name)) {
      admin.updateUser(name, { pwd, roles }, { w: "majority" });
      print(`user ${name}: updated`);
    } else {
      admin.createUser({ user: name, pwd, roles }, { w: "majority" });
      print(`user ${name}: created`);
    }
  }, 12);
}

upsertUser("multivac", env("MONGO_APP_PASSWORD"), [{ role: "readWrite", db: env("MONGO_DB_NAME") }]);
upsertUser("backup", env("MONGO_BACKUP_PASSWORD"), [{ role: "backup", db: "admin" }]);
print("mongo-init: done");
