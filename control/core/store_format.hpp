// On-disk format of hag-control's binding cache store (docs/reliability.md): a write-ahead log
// of session records plus periodic snapshots, both made of the same framed records.
//
//   file   = header record*
//   header = magic[8] ("HAGWAL\0\1" | "HAGSNP\0\1") version:u16 kind:u16 reserved:u32
//            generation:u64 restart_counter:u32 crc32c:u32      (32 octets, crc over the 28 before)
//   record = length:u32 crc32c:u32 payload[length]              (crc over the payload)
//   payload= type:u8 body   type 1 PUT session, 2 DELETE nai, 3 END count:u64 (snapshots only)
//
// All integers little-endian. Path lifetimes are stored as wall-clock seconds (the cache keeps
// monotonic seconds, which mean nothing after a reboot). Everything read back is input from
// disk: every length is checked against the bytes present and against the format's limits, and
// nothing is trusted before its CRC matched.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "binding_cache.hpp"
#include "hag/result.hpp"

namespace hag::control::store {

inline constexpr std::size_t kHeaderSize = 32;
inline constexpr std::size_t kRecordHeaderSize = 8;
inline constexpr std::uint32_t kMaxRecordSize = 1u << 20;  // far above any real session
inline constexpr std::uint16_t kVersion = 1;

enum class FileKind : std::uint16_t { kLog = 1, kSnapshot = 2 };
enum class RecordType : std::uint8_t { kPut = 1, kDelete = 2, kEnd = 3 };

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as in iSCSI / ext4.
std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t crc = 0) noexcept;

struct Header {
    FileKind kind = FileKind::kLog;
    std::uint64_t generation = 0;
    std::uint32_t restart_counter = 0;
};

struct Record {
    RecordType type = RecordType::kPut;
    Session session;          // kPut: expires_at of each path in wall-clock seconds
    std::string nai;          // kDelete
    std::uint64_t count = 0;  // kEnd: sessions in the snapshot
};

// Encoders append to `out`.
void encode_header(const Header& h, std::vector<std::uint8_t>& out);
// `to_wall` is added to every path's expires_at (monotonic -> wall-clock seconds).
void encode_put(const Session& s, std::int64_t to_wall, std::vector<std::uint8_t>& out);
void encode_delete(std::string_view nai, std::vector<std::uint8_t>& out);
void encode_end(std::uint64_t count, std::vector<std::uint8_t>& out);

Result<Header, std::string> decode_header(std::span<const std::uint8_t> in);
// One record payload (after the framing): type and body, all of it consumed.
Result<Record, std::string> decode_payload(std::span<const std::uint8_t> payload);

// A parsed file. `valid_bytes` is the length of the prefix made of the header and whole,
// CRC-correct, decodable records; `tail_error` says why parsing stopped before the end, if it
// did (a torn write at a crash, or corruption).
struct ParsedFile {
    Header header;
    std::vector<Record> records;
    std::size_t valid_bytes = 0;
    std::optional<std::string> tail_error;
};
// Fails only when the header itself is unusable.
Result<ParsedFile, std::string> parse_file(std::span<const std::uint8_t> bytes);

// A snapshot must be whole: header, PUT records, one END whose count matches, nothing after.
Result<ParsedFile, std::string> parse_snapshot(std::span<const std::uint8_t> bytes);

}  // namespace hag::control::store
