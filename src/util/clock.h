/* clock: the wall clock in milliseconds since the epoch, as jobs and documents
 * carry it (received_at, processed_at, failed_at). Intervals use the loop's
 * monotonic clock (uv_now, uv_hrtime) instead. */
#ifndef MULTIVAC_CLOCK_H
#define MULTIVAC_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);

#endif
