// Identifiers: random, URL-safe, prefixed by kind ("j-" jobs, "t-" tokens).
#pragma once

#include <string>
#include <string_view>

namespace greenlight {

// "j-" followed by 16 lowercase hex digits from a CSPRNG-seeded generator.
std::string NewJobId();
// Prefix + `hex_digits` random hex digits.
std::string NewId(std::string_view prefix, int hex_digits);
// Valid team / zone name: 1-63 chars of [a-z0-9-], not starting or ending with '-'.
bool IsValidName(std::string_view s);

}  // namespace greenlight
