// MPI ping-pong between ranks 0 and 1 (mpirun -np 2 bench/ring_pingpong [--json]): one-way
// latency and bandwidth per message size, the two link figures of the ring attention scaling
// model in docs/distributed.md. Sizes from 8 B to 32 MiB; one-way time = round trip / 2, its
// minimum and median over many round trips.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "ring_pingpong: %d ranks; expected exactly 2 (mpirun -np 2)\n", size);
    MPI_Finalize();
    return 2;
  }
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  const long max_bytes = 64L << 20;
  std::vector<char> buf(static_cast<size_t>(max_bytes), 1);
  if (rank == 0 && json) std::printf("[");
  bool first = true;
  for (long bytes = 8; bytes <= max_bytes; bytes *= 4) {
    // Each round trip timed on its own: on a shared machine a rank that is descheduled for a
    // time slice turns a mean into noise, the minimum is what the transport does, the median
    // what it did here under load.
    const int trips = bytes <= (1L << 20) ? 200 : 20;
    std::vector<double> t;
    for (int i = 0; i < trips; ++i) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      if (rank == 0) {
        MPI_Send(buf.data(), static_cast<int>(bytes), MPI_BYTE, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(buf.data(), static_cast<int>(bytes), MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(buf.data(), static_cast<int>(bytes), MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf.data(), static_cast<int>(bytes), MPI_BYTE, 0, 0, MPI_COMM_WORLD);
      }
      t.push_back((MPI_Wtime() - t0) / 2);
    }
    std::sort(t.begin(), t.end());
    const double best = t.front(), median = t[t.size() / 2];
    if (rank == 0) {
      if (json)
        std::printf("%s{\"bytes\": %ld, \"one_way_us_min\": %.4g, \"one_way_us_median\": %.4g, \"gbytes_per_s_best\": %.4g}",
                    first ? "" : ", ", bytes, best * 1e6, median * 1e6, bytes / best / 1e9);
      else
        std::printf("%10ld B  one-way min %10.2f us  median %10.2f us  best %8.3f GB/s\n", bytes, best * 1e6, median * 1e6,
                    bytes / best / 1e9);
    }
    first = false;
  }
  if (rank == 0 && json) std::printf("]\n");
  MPI_Finalize();
  return 0;
}
