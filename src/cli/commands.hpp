#pragma once
#include <string>
#include <vector>

namespace attnkit::cli {
// Each returns the process exit code; bad input throws attnkit::Error (main turns it into exit 2).
int cmd_list(const std::vector<std::string>& args);
int cmd_run(const std::vector<std::string>& args);
int cmd_gen(const std::vector<std::string>& args);
int cmd_sweep(const std::vector<std::string>& args);
int cmd_mha(const std::vector<std::string>& args);      // built with the layer (ATTNKIT_HAS_LAYER)
int cmd_weights(const std::vector<std::string>& args);
int cmd_decode(const std::vector<std::string>& args);   // built with decode (ATTNKIT_HAS_DECODE)
}  // namespace attnkit::cli
