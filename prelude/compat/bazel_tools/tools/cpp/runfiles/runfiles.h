// bp's C++ runfiles library, for programs written against Bazel's
// @bazel_tools//tools/cpp/runfiles:
//
//   std::string error;
//   std::unique_ptr<Runfiles> runfiles(Runfiles::Create(argv[0], &error));
//   std::string path = runfiles->Rlocation("my_workspace/pkg/data.txt");
//
// Create finds the program's runfiles tree: RUNFILES_DIR (or TEST_SRCDIR, as a
// test sees it), else "<argv0>.runfiles". bp lays runfiles out as a directory
// tree, so no manifest is read.

#ifndef BP_COMPAT_TOOLS_CPP_RUNFILES_RUNFILES_H_
#define BP_COMPAT_TOOLS_CPP_RUNFILES_RUNFILES_H_

#include <string>
#include <utility>
#include <vector>

namespace bazel {
namespace tools {
namespace cpp {
namespace runfiles {

class Runfiles {
 public:
  // The runfiles of the program started as `argv0`; nullptr (and `error` set)
  // when it has none.
  static Runfiles* Create(const std::string& argv0, std::string* error = nullptr);
  // The runfiles of the test that runs (from its environment).
  static Runfiles* CreateForTest(std::string* error = nullptr);

  // Where the runfile "<workspace>/<path>" is; an absolute path unchanged; ""
  // for an empty or malformed path.
  std::string Rlocation(const std::string& path) const;

  // The environment that lets a child process find the same runfiles.
  const std::vector<std::pair<std::string, std::string>>& EnvVars() const {
    return env_;
  }

 private:
  explicit Runfiles(const std::string& directory);

  std::string directory_;
  std::vector<std::pair<std::string, std::string>> env_;
};

}  // namespace runfiles
}  // namespace cpp
}  // namespace tools
}  // namespace bazel

#endif  // BP_COMPAT_TOOLS_CPP_RUNFILES_RUNFILES_H_
