#include "hag/config/textproto.hpp"

#include <fmt/format.h>
#include <google/protobuf/io/tokenizer.h>

#include <fstream>
#include <sstream>

namespace hag::config {

namespace pb = google::protobuf;

std::string Error::str() const {
    if (line == 0) {
        return fmt::format("{}: {}", file, message);
    }
    return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

namespace {
class Collector final : public pb::io::ErrorCollector {
  public:
    Collector(const std::string& file, Errors& out) : file_(file), out_(out) {}
    void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
        out_.push_back({file_, line + 1, column + 1, message});
    }
    void AddWarning(int line, pb::io::ColumnNumber column, const std::string& message) override {
        out_.push_back({file_, line + 1, column + 1, "warning treated as error: " + message});
    }

  private:
    const std::string& file_;
    Errors& out_;
};
}  // namespace

Result<void, Errors> parse_text(std::string_view text, const std::string& file, pb::Message& out,
                                ParseInfoTree& tree) {
    Errors errors;
    Collector collector(file, errors);
    pb::TextFormat::Parser parser;
    parser.RecordErrorsTo(&collector);
    parser.WriteLocationsTo(&tree);
    if (!parser.ParseFromString(std::string(text), &out)) {
        if (errors.empty()) {
            errors.push_back({file, 0, 0, "could not be parsed"});
        }
        return unexpected(std::move(errors));
    }
    return {};
}

Result<std::string, Errors> read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        return unexpected(Errors{{path, 0, 0, "cannot open the file"}});
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void Reporter::at(const ParseInfoTree* tree, const pb::Message& msg, const char* name, int index,
                  std::string message) const {
    int line = 0, col = 0;
    if (tree != nullptr) {
        if (const auto* fd = msg.GetDescriptor()->FindFieldByName(name)) {
            const auto loc = tree->GetLocation(fd, fd->is_repeated() ? index : -1);
            if (loc.line >= 0) {
                line = loc.line + 1;
                col = loc.column + 1;
            }
        }
    }
    errors_.push_back({file_, line, col, std::move(message)});
}

void Reporter::file(std::string message) const {
    errors_.push_back({file_, 0, 0, std::move(message)});
}

const ParseInfoTree* Reporter::nested(const ParseInfoTree* tree, const pb::Message& msg,
                                      const char* name, int index) {
    if (tree == nullptr) {
        return nullptr;
    }
    const auto* fd = msg.GetDescriptor()->FindFieldByName(name);
    return fd == nullptr ? nullptr : tree->GetTreeForNested(fd, fd->is_repeated() ? index : -1);
}

}  // namespace hag::config
