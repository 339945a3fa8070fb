#include "heatmap.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "attnkit/error.hpp"

extern char** environ;

namespace attnkit::cli {

namespace {
bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string exe_dir() {
  char buf[4096];
  const ssize_t len = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (len <= 0) return "";
  std::string p(buf, static_cast<size_t>(len));
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}
}  // namespace

std::string find_heatmap_script() {
  std::vector<std::string> tried;
  if (const char* env = std::getenv("ATTNKIT_HEATMAP")) {
    if (is_file(env)) return env;
    detail::fail("--png: ATTNKIT_HEATMAP=", env, " is not a file; expected the path of heatmap.py");
  }
  const std::string dir = exe_dir();
  if (!dir.empty()) {
    tried.push_back(dir + "/heatmap.py");
    tried.push_back(dir + "/../share/attnkit/heatmap.py");
  }
  tried.push_back(std::string(ATTNKIT_DATADIR) + "/heatmap.py");
  std::string list;
  for (const auto& p : tried) {
    if (is_file(p)) return p;
    list += (list.empty() ? "" : ", ") + p;
  }
  detail::fail("--png: heatmap.py not found (tried ", list, "); expected it installed with attnkit or set ATTNKIT_HEATMAP");
}

void run_heatmap(const std::vector<std::string>& args) {
  const char* env_py = std::getenv("ATTNKIT_PYTHON");
  const std::string python = env_py ? env_py : "/usr/bin/python3";
  const std::string script = find_heatmap_script();
  std::vector<std::string> all{python, script};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The child's stderr goes to a temporary file so that our own error stays one line.
  char err_path[] = "/tmp/attnkit-heatmap-XXXXXX";
  const int fd = ::mkstemp(err_path);
  if (fd < 0) detail::fail("--png: cannot create a temporary file: ", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, python.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fd);
  int status = 0;
  if (rc == 0) ::waitpid(pid, &status, 0);
  std::ifstream in(err_path);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  ::unlink(err_path);
  if (rc != 0) detail::fail("--png: cannot run ", python, ": ", std::strerror(rc), "; expected a Python 3 with numpy and matplotlib (set ATTNKIT_PYTHON)");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    detail::fail("--png: ", python, " ", script, " failed (", WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status)) : std::string("killed"),
                 "): ", last.empty() ? "no message" : last);
}

}  // namespace attnkit::cli
