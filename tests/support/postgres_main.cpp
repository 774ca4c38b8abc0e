// A PostgreSQL server for a whole test run (a ctest fixture):
//   yilian_test_postgres start DIR   initdb and start in DIR (its port in DIR/port)
//   yilian_test_postgres stop DIR    stop it and remove DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "postgres.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s start|stop DIR\n", argv[0]);
    return 2;
  }
  const std::string verb = argv[1];
  const std::filesystem::path dir = argv[2];
  std::error_code ec;
  if (verb == "start") {
    yilian::testing::PostgresServer pg;
    std::string why;
    if (!pg.start(&why)) {
      std::fprintf(stderr, "postgres: %s\n", why.c_str());
      return 1;
    }
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    std::ofstream(dir / "port") << pg.port() << "\n";
    std::ofstream(dir / "cluster") << pg.dir().string() << "\n";
    pg.release();
    std::printf("postgres: listening on 127.0.0.1:%u\n", pg.port());
    return 0;
  }
  if (verb == "stop") {
    std::ifstream in(dir / "cluster");
    std::string cluster;
    std::getline(in, cluster);
    if (!cluster.empty()) {
      yilian::testing::PostgresServer pg;
      pg.adopt(cluster);
      pg.stop();
    }
    std::filesystem::remove_all(dir, ec);
    return 0;
  }
  std::fprintf(stderr, "unknown verb %s\n", verb.c_str());
  return 2;
}
