// Configuration files in protobuf text format, shared by hag-control and hag-dataplane: parse
// into a message, and report every problem — syntax, unknown field, invalid value — as
// "file:line:column: message".
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <string>
#include <string_view>
#include <vector>

#include "hag/result.hpp"

namespace hag::config {

struct Error {
    std::string file;
    int line = 0;    // 1-based; 0 when the error concerns the file as a whole
    int column = 0;  // 1-based
    std::string message;
    [[nodiscard]] std::string str() const;
};
using Errors = std::vector<Error>;

using ParseInfoTree = google::protobuf::TextFormat::ParseInfoTree;

// Parses `text` into `out`, recording field locations in `tree` for later validation errors.
Result<void, Errors> parse_text(std::string_view text, const std::string& file,
                                google::protobuf::Message& out, ParseInfoTree& tree);
// Reads a whole file; the error names the file.
Result<std::string, Errors> read_file(const std::string& path);

// Reports validation errors at the location of a field in the parsed file.
class Reporter {
  public:
    Reporter(std::string file, Errors& errors) : file_(std::move(file)), errors_(errors) {}
    // An error at field `name` (element `index` of a repeated field) of `msg`, whose locations
    // are in `tree` (may be null: then the error has no line).
    void at(const ParseInfoTree* tree, const google::protobuf::Message& msg, const char* name,
            int index, std::string message) const;
    // An error about the file as a whole.
    void file(std::string message) const;
    // The location tree of a nested message field (null when absent).
    static const ParseInfoTree* nested(const ParseInfoTree* tree,
                                       const google::protobuf::Message& msg, const char* name,
                                       int index = -1);

  private:
    std::string file_;
    Errors& errors_;
};

}  // namespace hag::config
