/* bench_allreduce.c — the time of one MPI_Allreduce (MPI_SUM over floats, in place) of a
 * given size, as `nnc build --mpi` programs call it on their gradient buckets: every
 * repetition starts at a barrier, so the time is the transfer and the sum, not the waiting
 * for a slower rank; the slowest rank's time counts. Run by bench/mpi_scaling.sh:
 *   mpicc -O2 bench_allreduce.c -o bench_allreduce
 *   mpirun -np 2 ./bench_allreduce BYTES [REPS]
 * prints the median and the minimum in ms (rank 0).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long bytes = argc > 1 ? atol(argv[1]) : 1 << 20;
  int reps = argc > 2 ? atoi(argv[2]) : 50;
  int n = (int)(bytes / 4);
  float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
  double *t = malloc((size_t)(reps > 0 ? reps : 1) * sizeof *t);
  if (n < 1 || reps < 1 || !buf || !t) {
    if (rank == 0) fprintf(stderr, "usage: bench_allreduce BYTES [REPS]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  for (int i = 0; i < n; i++) buf[i] = (float)(i % 97) * 0.01f;
  for (int r = -3; r < reps; r++) { /* 3 warm-up calls */
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double dt = MPI_Wtime() - t0, worst;
    for (int i = 0; i < n; i++) buf[i] *= 1.0f / (float)size;
    MPI_Reduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (r >= 0) t[r] = worst;
  }
  if (rank == 0) {
    qsort(t, (size_t)reps, sizeof *t, cmp);
    printf("allreduce %ld bytes on %d ranks: median %.3f ms, min %.3f ms (%d repetitions)\n",
           bytes, size, 1e3 * t[reps / 2], 1e3 * t[0], reps);
  }
  free(buf);
  free(t);
  MPI_Finalize();
  return 0;
}
