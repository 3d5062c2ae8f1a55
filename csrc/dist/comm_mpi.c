/* comm_mpi.c - comm.h's collectives over Open MPI (comm_mpi.h). Errors come
 * back as codes (MPI_ERRORS_RETURN) with MPI's own message; counts above
 * what an MPI int holds go in pieces. */
#include "comm_mpi.h"

#include <limits.h>
#include <stdio.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK ((int64_t)1 << 28) /* elements per MPI call: well inside an int */

static mm_mpi_stats stats;
static int started, world_rank, world_size;

mm_mpi_stats *mm_mpi_stats_of(void) { return &stats; }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(int code, const char *what, mm_err *e) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, s, &len) != MPI_SUCCESS) len = 0;
  s[len] = 0;
  return mm_errorf(e, MM_EIO, "dist: %s failed on rank %d: %s", what, world_rank, len ? s : "MPI error");
}

/* the exit handler (comm_mpi.h): MPI is finalised at a clean exit; at any
 * other the process leaves it as it is, and mpirun, seeing a process end
 * with a non-zero status before MPI_Finalize, ends the whole job (Open MPI's
 * default, orte_abort_on_non_zero_status). MPI_Abort from here would do the
 * same, but its message races the process's exit and comes out garbled. */
static void at_exit(int status, void *arg) {
  (void)arg;
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin && status == 0) MPI_Finalize();
}

int mm_mpi_start(int *rank, int *size, mm_err *e) {
  if (!started) {
    int init = 0, provided = 0, rc;
    MPI_Initialized(&init);
    if (!init && (rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
      return fail(rc, "MPI_Init_thread", e);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (!init) on_exit(at_exit, NULL); /* a process that initialised MPI itself ends it */
    started = 1;
  }
  *rank = world_rank;
  *size = world_size;
  return MM_OK;
}

static MPI_Datatype dtype(int type, size_t *elem) {
  switch (type) {
  case MM_COMM_F64:
    *elem = 8;
    return MPI_DOUBLE;
  case MM_COMM_I64:
    *elem = 8;
    return MPI_INT64_T;
  default:
    *elem = 4;
    return MPI_FLOAT;
  }
}

static MPI_Op mpi_op(int op) { return op == MM_COMM_MIN ? MPI_MIN : op == MM_COMM_MAX ? MPI_MAX : MPI_SUM; }

int mm_mpi_allreduce(void *buf, int64_t n, int type, int op, mm_err *e) {
  size_t elem;
  MPI_Datatype t = dtype(type, &elem);
  double t0 = now();
  for (int64_t s = 0; s < n; s += CHUNK) {
    int k = (int)(n - s < CHUNK ? n - s : CHUNK);
    int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + s * elem, k, t, mpi_op(op), MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return fail(rc, "MPI_Allreduce", e);
    stats.calls++;
  }
  stats.bytes += n * (int64_t)elem;
  stats.allreduce_bytes += n * (int64_t)elem;
  stats.seconds += now() - t0;
  return MM_OK;
}

int mm_mpi_bcast(void *buf, int64_t bytes, int root, mm_err *e) {
  double t0 = now();
  for (int64_t s = 0; s < bytes; s += CHUNK) {
    int k = (int)(bytes - s < CHUNK ? bytes - s : CHUNK);
    int rc = MPI_Bcast((char *)buf + s, k, MPI_BYTE, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return fail(rc, "MPI_Bcast", e);
    stats.calls++;
  }
  if (root == world_rank) {
    stats.bytes += bytes;
    stats.bcast_bytes += bytes;
  }
  stats.seconds += now() - t0;
  return MM_OK;
}

static int allgatherv(const void *mine, int64_t bytes, void *out, const int64_t *bytes_of, mm_err *e) {
  int64_t total = 0, big = 0;
  for (int r = 0; r < world_size; r++) {
    total += bytes_of[r];
    big |= bytes_of[r] > INT_MAX;
  }
  if (bytes != bytes_of[world_rank])
    return mm_errorf(e, MM_EINVAL, "dist: allgatherv of %lld bytes where the list says %lld", (long long)bytes,
                     (long long)bytes_of[world_rank]);
  double t0 = now();
  int rc = MPI_SUCCESS;
  if (total <= INT_MAX && !big) {
    int *cnt = malloc((size_t)world_size * 2 * sizeof *cnt);
    if (!cnt) return mm_errorf(e, MM_ENOMEM, "dist: out of memory");
    int *disp = cnt + world_size, off = 0;
    for (int r = 0; r < world_size; r++) cnt[r] = (int)bytes_of[r], disp[r] = off, off += cnt[r];
    rc = MPI_Allgatherv(mine, (int)bytes, MPI_BYTE, out, cnt, disp, MPI_BYTE, MPI_COMM_WORLD);
    free(cnt);
    stats.calls++;
  } else { /* beyond int counts: every process broadcasts its part, in pieces */
    int64_t off = 0;
    for (int r = 0; r < world_size && rc == MPI_SUCCESS; r++) {
      if (r == world_rank) memcpy((char *)out + off, mine, (size_t)bytes);
      for (int64_t s = 0; s < bytes_of[r] && rc == MPI_SUCCESS; s += CHUNK) {
        int k = (int)(bytes_of[r] - s < CHUNK ? bytes_of[r] - s : CHUNK);
        rc = MPI_Bcast((char *)out + off + s, k, MPI_BYTE, r, MPI_COMM_WORLD);
        stats.calls++;
      }
      off += bytes_of[r];
    }
  }
  if (rc != MPI_SUCCESS) return fail(rc, "MPI_Allgatherv", e);
  stats.bytes += bytes;
  stats.gather_bytes += bytes;
  stats.seconds += now() - t0;
  return MM_OK;
}

static int c_allreduce(void *ud, void *buf, int64_t n, int type, int op, mm_err *e) {
  (void)ud;
  return mm_mpi_allreduce(buf, n, type, op, e);
}
static int c_allgatherv(void *ud, const void *mine, int64_t bytes, void *out, const int64_t *bytes_of, mm_err *e) {
  (void)ud;
  return allgatherv(mine, bytes, out, bytes_of, e);
}
static int c_bcast(void *ud, void *buf, int64_t bytes, int root, mm_err *e) {
  (void)ud;
  return mm_mpi_bcast(buf, bytes, root, e);
}

void mm_mpi_comm(mm_comm *c, int rank, int size) {
  memset(c, 0, sizeof *c);
  c->abi = MM_COMM_ABI;
  c->rank = rank;
  c->size = size;
  c->allreduce = c_allreduce;
  c->allgatherv = c_allgatherv;
  c->bcast = c_bcast;
}

int mm_mpi_barrier(mm_err *e) {
  double t0 = now();
  int rc = MPI_Barrier(MPI_COMM_WORLD);
  stats.calls++;
  stats.seconds += now() - t0;
  return rc == MPI_SUCCESS ? MM_OK : fail(rc, "MPI_Barrier", e);
}

int mm_mpi_send(const void *buf, int64_t bytes, int dest, int tag, mm_err *e) {
  if (bytes > INT_MAX) return mm_errorf(e, MM_EINVAL, "dist: a message of %lld bytes is too long", (long long)bytes);
  double t0 = now();
  int rc = MPI_Send(buf, (int)bytes, MPI_BYTE, dest, tag, MPI_COMM_WORLD);
  stats.calls++;
  stats.bytes += bytes;
  stats.p2p_bytes += bytes;
  stats.seconds += now() - t0;
  return rc == MPI_SUCCESS ? MM_OK : fail(rc, "MPI_Send", e);
}

int mm_mpi_recv(int source, int tag, void **buf, int64_t *bytes, mm_err *e) {
  double t0 = now();
  MPI_Status st;
  int rc = MPI_Probe(source, tag, MPI_COMM_WORLD, &st), n = 0;
  if (rc != MPI_SUCCESS) return fail(rc, "MPI_Probe", e);
  MPI_Get_count(&st, MPI_BYTE, &n);
  *buf = malloc((size_t)(n > 0 ? n : 1));
  if (!*buf) return mm_errorf(e, MM_ENOMEM, "dist: out of memory for a message of %d bytes", n);
  rc = MPI_Recv(*buf, n, MPI_BYTE, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  stats.calls++;
  stats.seconds += now() - t0;
  if (rc != MPI_SUCCESS) {
    free(*buf);
    *buf = NULL;
    return fail(rc, "MPI_Recv", e);
  }
  *bytes = n;
  return MM_OK;
}

void mm_mpi_host(char *out, int cap) {
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  if (MPI_Get_processor_name(name, &len) != MPI_SUCCESS) len = 0;
  name[len] = 0;
  snprintf(out, (size_t)cap, "%s", name);
}
