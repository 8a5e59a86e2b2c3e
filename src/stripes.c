/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stripes.c - the thread tickets of src/stripes.h (the pools, the reclamation domains'
 * retire queues and readmostly's counter pick their stripe with them).
 */
#include "stripes.h"

_Thread_local unsigned chm__thread_ticket_tls __attribute__((tls_model("initial-exec")));
atomic_uint chm__thread_ticket_next;
