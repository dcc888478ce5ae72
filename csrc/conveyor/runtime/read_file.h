// Reads a whole file into a reused byte vector. Missing files throw Error(kNotFound), other
// failures Error(kIo), both with the path and the system's reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace conveyor {

void read_file(const std::string& path, std::vector<uint8_t>& bytes);

}  // namespace conveyor
