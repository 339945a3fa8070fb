#pragma once
// The CLI's Python helper scripts (reports/heatmap.py, reports/peers.py), run as child processes.
//
// A script FILE is looked up, first hit wins:
//   1. $ENV_VAR (a path to the script),
//   2. <directory of the attnkit executable>/FILE  (the build tree: meson copies it next to
//      build/src/cli/attnkit),
//   3. <directory of the executable>/../share/attnkit/FILE  (an installed, relocated tree),
//   4. ATTNKIT_DATADIR/FILE, the install data dir compiled in (<prefix>/share/attnkit).
// The interpreter is $ATTNKIT_PYTHON, else /usr/bin/python3 (named explicitly: a python3 earlier
// on PATH may lack numpy, matplotlib or torch).
#include <string>
#include <vector>

namespace attnkit::cli {

// Throws attnkit::Error, starting with `flag` (the option that needs the script), naming every
// place tried.
std::string find_script(const std::string& file, const char* env_var, const std::string& flag);

std::string python_interpreter();

// Runs the interpreter on `script` with `args`; the child's stdout goes to /dev/null, its stderr
// is kept. Throws attnkit::Error (starting with `flag`, saying the interpreter needs `needs`) with
// the script's last stderr line when it fails, or when the interpreter cannot be started.
void run_script(const std::string& script, const std::vector<std::string>& args, const std::string& flag,
                const std::string& needs);

}  // namespace attnkit::cli
