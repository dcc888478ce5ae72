#pragma once

#include <string>

namespace conveyor {

// The codec libraries this build links, for bug reports ("conveyor.build_info()").
std::string library_versions();

}  // namespace conveyor
