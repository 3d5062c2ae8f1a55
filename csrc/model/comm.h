/* comm.h - the collective operations data-parallel training and evaluation
 * need, as a table of functions the caller hands to the core.
 *
 * The core knows no MPI: mmfuse.dist (csrc/dist, linked against Open MPI)
 * fills an mm_comm and carries it into fit / evaluate / predict as a Lua
 * userdata named MM_COMM_MT; the core (sync.c, train_dist.c,
 * train_dist_stream.c, eval_dist.c) calls nothing but these functions. Every function is collective: every
 * process calls it at the same point with the same n / type / op (the byte
 * counts of allgatherv are per process, and every process knows all of them),
 * and each returns MM_OK or an error code with a message in e. A process that
 * fails outside the collectives stops the job through the launcher (the dist
 * module's exit path), so a collective never waits for it forever.
 */
#ifndef MM_COMM_H
#define MM_COMM_H

#include <stdint.h>

#include "../core/error.h"

/* bumped whenever mm_comm changes: a dist module built against another layout is refused */
#define MM_COMM_ABI 1
#define MM_COMM_MT "mmfuse.Comm"

enum { MM_COMM_F32 = 0, MM_COMM_F64, MM_COMM_I64 };
enum { MM_COMM_SUM = 0, MM_COMM_MIN, MM_COMM_MAX };

typedef struct mm_comm {
  int abi; /* MM_COMM_ABI of the header the provider was built with */
  int rank, size;
  void *ud;
  /* buf[0..n) := the elementwise op over every process's buf, in place.
   * Every process gets the same bits (MPI_Allreduce: the reduced values are
   * computed once and sent, or computed pairwise as a + b == b + a). */
  int (*allreduce)(void *ud, void *buf, int64_t n, int type, int op, mm_err *e);
  /* out := the `bytes` bytes of mine of every process, in rank order;
   * bytes_of[r] is process r's count (every process passes the same list) */
  int (*allgatherv)(void *ud, const void *mine, int64_t bytes, void *out, const int64_t *bytes_of, mm_err *e);
  /* buf[0..bytes) of process root into every process's buf */
  int (*bcast)(void *ud, void *buf, int64_t bytes, int root, mm_err *e);
} mm_comm;

/* MM_OK when c is a table the core can call (the same ABI, a sane rank / size) */
static inline int mm_comm_check(const mm_comm *c, mm_err *e) {
  if (!c || c->abi != MM_COMM_ABI || !c->allreduce || !c->allgatherv || !c->bcast)
    return mm_errorf(e, MM_EINVAL, "dist: the communicator comes from a dist module built for another mmfuse");
  if (c->size < 1 || c->rank < 0 || c->rank >= c->size)
    return mm_errorf(e, MM_EINVAL, "dist: rank %d of %d is not a process of the job", c->rank, c->size);
  return MM_OK;
}

#endif
