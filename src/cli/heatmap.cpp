#include "heatmap.hpp"

#include "python_script.hpp"

namespace attnkit::cli {

std::string find_heatmap_script() { return find_script("heatmap.py", "ATTNKIT_HEATMAP", "--png"); }

void run_heatmap(const std::vector<std::string>& args) {
  run_script(find_heatmap_script(), args, "--png", "numpy and matplotlib");
}

}  // namespace attnkit::cli
