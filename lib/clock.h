#ifndef WF_CLOCK_H
#define WF_CLOCK_H

#include <stdint.h>

/* A monotonic clock in milliseconds. */
int64_t wf_clock_ms(void);

/* Sleep `ms` milliseconds (less when a signal comes). */
void wf_clock_sleep_ms(int64_t ms);

#endif
