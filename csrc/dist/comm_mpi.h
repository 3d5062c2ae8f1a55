/* comm_mpi.h - the collectives of comm.h over Open MPI's MPI_COMM_WORLD, and
 * the process's MPI life (mmfuse.dist; the core never links MPI).
 *
 * Life: mm_mpi_start initialises MPI once per process (threads: only the
 * thread that called it talks to MPI, MPI_THREAD_FUNNELED; the core's worker
 * threads never do) and registers an exit handler. At a clean exit (status
 * 0) the handler finalises MPI; at any other exit status it leaves MPI
 * alone, and the launcher (mpirun) ends the whole job because a process
 * ended with an error before MPI_Finalize: the other processes, which may be
 * waiting inside a collective for this one, end within moments instead of
 * hanging. The failing process has printed its message by then (lua5.4 and
 * bin/mmfuse print an error before they exit). */
#ifndef MM_COMM_MPI_H
#define MM_COMM_MPI_H

#include <stdint.h>

#include "../model/comm.h"

/* what this process handed to MPI since the last reset (payload bytes: an
 * allreduce of n floats counts 4 n, an allgatherv this process's part, a
 * broadcast or a send the bytes it sends) */
typedef struct mm_mpi_stats {
  int64_t calls, bytes, allreduce_bytes, gather_bytes, bcast_bytes, p2p_bytes;
  double seconds; /* inside MPI calls */
} mm_mpi_stats;

/* MPI up (once), rank and size of MPI_COMM_WORLD; errors return in e */
int mm_mpi_start(int *rank, int *size, mm_err *e);
/* the comm.h table over MPI_COMM_WORLD */
void mm_mpi_comm(mm_comm *c, int rank, int size);
int mm_mpi_barrier(mm_err *e);
int mm_mpi_send(const void *buf, int64_t bytes, int dest, int tag, mm_err *e);
/* receives a message of any length from source (its bytes in *buf, malloc'd) */
int mm_mpi_recv(int source, int tag, void **buf, int64_t *bytes, mm_err *e);
int mm_mpi_bcast(void *buf, int64_t bytes, int root, mm_err *e);
int mm_mpi_allreduce(void *buf, int64_t n, int type, int op, mm_err *e);
/* the name of this host (MPI_Get_processor_name) */
void mm_mpi_host(char *out, int cap);
mm_mpi_stats *mm_mpi_stats_of(void);

#endif
