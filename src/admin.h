/* admin: one-shot operator commands against Redis, each returning the exit
 * status of the process that runs it. */
#ifndef MULTIVAC_ADMIN_H
#define MULTIVAC_ADMIN_H

#include "config.h"

/* `multivac dead-letters [list|requeue]`: prints each dead letter as a JSON line
 * on stdout (list), or moves their jobs back to the queue and prints how many
 * (requeue). Returns the process exit status. */
int admin_dead_letters(const config_t *cfg);

#endif
