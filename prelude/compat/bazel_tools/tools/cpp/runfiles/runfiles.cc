// bp's C++ runfiles library: see runfiles.h.

#include "tools/cpp/runfiles/runfiles.h"

#include <stdlib.h>
#include <sys/stat.h>

namespace bazel {
namespace tools {
namespace cpp {
namespace runfiles {

namespace {

bool IsDirectory(const std::string& path) {
  struct stat info;
  return !path.empty() && stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

std::string FromEnvironment(const char* name) {
  const char* value = getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

Runfiles::Runfiles(const std::string& directory)
    : directory_(directory),
      env_({{"RUNFILES_DIR", directory}, {"JAVA_RUNFILES", directory}}) {}

Runfiles* Runfiles::Create(const std::string& argv0, std::string* error) {
  for (const std::string& candidate :
       {FromEnvironment("RUNFILES_DIR"), FromEnvironment("TEST_SRCDIR"),
        argv0.empty() ? std::string() : argv0 + ".runfiles"}) {
    if (IsDirectory(candidate)) {
      return new Runfiles(candidate);
    }
  }
  if (error != nullptr) {
    *error = "cannot find the runfiles of '" + argv0 +
             "': neither RUNFILES_DIR nor '" + argv0 + ".runfiles' is a directory";
  }
  return nullptr;
}

Runfiles* Runfiles::CreateForTest(std::string* error) {
  return Create(std::string(), error);
}

std::string Runfiles::Rlocation(const std::string& path) const {
  if (path.empty() || path.find("..") == 0 || path.find("/..") != std::string::npos) {
    return std::string();
  }
  if (path[0] == '/') {
    return path;
  }
  return directory_ + "/" + path;
}

}  // namespace runfiles
}  // namespace cpp
}  // namespace tools
}  // namespace bazel
