#include "python_script.hpp"

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

std::string find_script(const std::string& file, const char* env_var, const std::string& flag) {
  std::vector<std::string> tried;
  if (const char* env = std::getenv(env_var)) {
    if (is_file(env)) return env;
    detail::fail(flag, ": ", env_var, "=", env, " is not a file; expected the path of ", file);
  }
  const std::string dir = exe_dir();
  if (!dir.empty()) {
    tried.push_back(dir + "/" + file);
    tried.push_back(dir + "/../share/attnkit/" + file);
  }
  tried.push_back(std::string(ATTNKIT_DATADIR) + "/" + file);
  std::string list;
  for (const auto& p : tried) {
    if (is_file(p)) return p;
    list += (list.empty() ? "" : ", ") + p;
  }
  detail::fail(flag, ": ", file, " not found (tried ", list, "); expected it installed with attnkit or set ", env_var);
}

std::string python_interpreter() {
  const char* env_py = std::getenv("ATTNKIT_PYTHON");
  return env_py ? env_py : "/usr/bin/python3";
}

void run_script(const std::string& script, const std::vector<std::string>& args, const std::string& flag,
                const std::string& needs) {
  const std::string python = python_interpreter();
  std::vector<std::string> all{python, script};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The child's stderr goes to a temporary file so that our own error stays one line.
  char err_path[] = "/tmp/attnkit-script-XXXXXX";
  const int fd = ::mkstemp(err_path);
  if (fd < 0) detail::fail(flag, ": cannot create a temporary file: ", std::strerror(errno));
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
  if (rc != 0)
    detail::fail(flag, ": cannot run ", python, ": ", std::strerror(rc), "; expected a Python 3 with ", needs,
                 " (set ATTNKIT_PYTHON)");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    detail::fail(flag, ": ", python, " ", script, " failed (",
                 WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status)) : std::string("killed"),
                 "): ", last.empty() ? "no message" : last);
}

}  // namespace attnkit::cli
