#include "bridge/http/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "bridge/common/testing.h"

namespace bridge::http {
namespace {

using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;

std::string ReadAll(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(out.size()))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// data/ with files, hidden names and links that stay inside, leave, or leave and come back.
struct DataFolder {
  TempDir dir;
  std::filesystem::path data = dir.path() / "data";
  DataFolder() {
    std::filesystem::create_directories(data / "trips" / "year=2024");
    WriteFile(data / "cities.csv", "id,name\n1,Oslo\n");
    WriteFile(data / "trips" / "year=2024" / "part 1.parquet", "PAR1");
    WriteFile(data / ".hidden.csv", "x\n");
    WriteFile(dir.path() / "secret.txt", "outside\n");
    std::filesystem::create_symlink(dir.path() / "secret.txt", data / "link_out.csv");
    std::filesystem::create_symlink(data / "cities.csv", data / "link_abs.csv");
    std::filesystem::create_symlink("trips/year=2024/part 1.parquet", data / "link_rel.parquet");
    std::filesystem::create_symlink(".hidden.csv", data / "link_hidden.csv");
    std::filesystem::create_symlink(dir.path(), data / "up");
    ::mkfifo((data / "pipe.csv").c_str(), 0600);
    WriteFile(data / "users.toml", "[users.alice]\n");
    WriteFile(data / "server.key", "-----BEGIN PRIVATE KEY-----\n");
    WriteFile(data / "trips.csv.gz", "gz");
  }
};

TEST(OpenDataFileTest, OpensFilesInsideTheFolder) {
  DataFolder f;
  ASSERT_OK_AND_ASSIGN(DataFile a, OpenDataFile(f.data, "cities.csv"));
  EXPECT_EQ(ReadAll(a.fd.get()), "id,name\n1,Oslo\n");
  EXPECT_EQ(a.relative, "cities.csv");
  EXPECT_EQ(a.info.st_size, 15);
  // Percent escapes, nested folders.
  ASSERT_OK_AND_ASSIGN(DataFile b, OpenDataFile(f.data, "trips/year%3D2024/part%201.parquet"));
  EXPECT_EQ(ReadAll(b.fd.get()), "PAR1");
  EXPECT_EQ(b.relative, "trips/year=2024/part 1.parquet");
  // Links that stay inside (absolute or relative), and one that leaves and comes back: what
  // counts is where the path ends.
  ASSERT_OK_AND_ASSIGN(DataFile c, OpenDataFile(f.data, "link_abs.csv"));
  EXPECT_EQ(c.relative, "cities.csv");
  ASSERT_OK_AND_ASSIGN(DataFile d, OpenDataFile(f.data, "link_rel.parquet"));
  EXPECT_EQ(ReadAll(d.fd.get()), "PAR1");
  ASSERT_OK_AND_ASSIGN(DataFile e, OpenDataFile(f.data, "up/data/cities.csv"));
  EXPECT_EQ(e.relative, "cities.csv");
  ASSERT_OK_AND_ASSIGN(DataFile g, OpenDataFile(f.data, "trips.csv.gz"));  // compressed data
  EXPECT_EQ(ReadAll(g.fd.get()), "gz");
}

TEST(OpenDataFileTest, RefusesEverythingThatLeavesTheFolderOrIsNotAFile) {
  DataFolder f;
  for (const char* path : {"../secret.txt",
                           "%2e%2e/secret.txt",
                           "%2E%2E%2Fsecret.txt",
                           "trips/../../secret.txt",
                           "./cities.csv",
                           "/etc/passwd",
                           "%2Fetc%2Fpasswd",
                           "trips//year=2024/part%201.parquet",
                           "..%5Csecret.txt",
                           "link_out.csv",
                           "up/secret.txt",
                           "up",
                           ".hidden.csv",
                           "link_hidden.csv",
                           "trips",
                           "trips/",
                           "missing.csv",
                           "",
                           "pipe.csv",
                           "users.toml",
                           "server.key"}) {
    EXPECT_STATUS(OpenDataFile(f.data, path), StatusCode::kNotFound, "no such file") << path;
  }
  EXPECT_STATUS(OpenDataFile(f.data, "cities.csv%00.txt"), StatusCode::kInvalidArgument, "NUL");
  EXPECT_STATUS(OpenDataFile(f.data, "cities%zz.csv"), StatusCode::kInvalidArgument, "");
  EXPECT_STATUS(OpenDataFile(f.dir.path() / "none", "cities.csv"), StatusCode::kUnavailable,
                "data folder");
}

TEST(ParseRangeTest, OneRangeOfEachShape) {
  auto span = [](std::string_view header, uint64_t size) {
    auto r = ParseRange(header, size);
    EXPECT_TRUE(r.ok()) << header;
    return r.ok() ? *r : std::nullopt;
  };
  EXPECT_EQ(span("bytes=0-9", 100), (ByteSpan{0, 10}));
  EXPECT_EQ(span("bytes=90-", 100), (ByteSpan{90, 100}));
  EXPECT_EQ(span("bytes=90-1000", 100), (ByteSpan{90, 100}));
  EXPECT_EQ(span("bytes=-10", 100), (ByteSpan{90, 100}));
  EXPECT_EQ(span("bytes=-1000", 100), (ByteSpan{0, 100}));
  EXPECT_EQ(span(" Bytes=5-5 ", 100), (ByteSpan{5, 6}));
  // Ignored: whole file.
  for (const char* h : {"", "items=0-1", "bytes=0-1,5-6", "bytes=5-1", "bytes=a-", "bytes=1",
                        "bytes=-", "bytes=--1", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(span(h, 100), std::nullopt) << h;
  }
  EXPECT_STATUS(ParseRange("bytes=100-", 100), StatusCode::kOutOfRange, "outside");
  EXPECT_STATUS(ParseRange("bytes=-0", 100), StatusCode::kOutOfRange, "outside");
  EXPECT_STATUS(ParseRange("bytes=0-", 0), StatusCode::kOutOfRange, "outside");
}

TEST(PlanFileResponseTest, WholePartialNotModifiedAndUnsatisfiable) {
  const std::string etag = "\"64-1-2\"";
  FilePlan whole = PlanFileResponse({}, 100, etag);
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.span, (ByteSpan{0, 100}));
  EXPECT_EQ(whole.headers, "ETag: \"64-1-2\"\r\nAccept-Ranges: bytes\r\n");

  FilePlan part = PlanFileResponse({.range = "bytes=10-19"}, 100, etag);
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.span, (ByteSpan{10, 20}));
  EXPECT_NE(part.headers.find("Content-Range: bytes 10-19/100\r\n"), std::string::npos);

  // If-Range: the range only for this version.
  EXPECT_EQ(PlanFileResponse({.range = "bytes=10-19", .if_range = etag}, 100, etag).status, 206);
  FilePlan other = PlanFileResponse({.range = "bytes=10-19", .if_range = "\"old\""}, 100, etag);
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.span, (ByteSpan{0, 100}));
  EXPECT_EQ(PlanFileResponse({.range = "bytes=1-2", .if_range = "W/\"64-1-2\""}, 100, etag).status,
            200);

  for (const char* tags : {"\"64-1-2\"", "W/\"64-1-2\"", "\"x\", \"64-1-2\"", "*"}) {
    FilePlan same = PlanFileResponse({.range = "bytes=1-2", .if_none_match = tags}, 100, etag);
    EXPECT_EQ(same.status, 304) << tags;
    EXPECT_EQ(same.span, (ByteSpan{0, 0}));
  }
  EXPECT_EQ(PlanFileResponse({.if_none_match = "\"x\""}, 100, etag).status, 200);

  FilePlan bad = PlanFileResponse({.range = "bytes=200-"}, 100, etag);
  EXPECT_EQ(bad.status, 416);
  EXPECT_NE(bad.headers.find("Content-Range: bytes */100\r\n"), std::string::npos);
}

TEST(FilesTest, ContentTypesAndETags) {
  EXPECT_EQ(ContentTypeOfFile("a/b.PARQUET"), "application/vnd.apache.parquet");
  EXPECT_EQ(ContentTypeOfFile("x.csv"), "text/csv");
  EXPECT_EQ(ContentTypeOfFile("x.jsonl"), "application/x-ndjson");
  EXPECT_EQ(ContentTypeOfFile("x.arrow"), "application/vnd.apache.arrow.file");
  EXPECT_EQ(ContentTypeOfFile("x.arrows"), "application/vnd.apache.arrow.stream");
  EXPECT_EQ(ContentTypeOfFile("x"), "application/octet-stream");
  struct stat info {};
  info.st_size = 255;
  info.st_mtim.tv_sec = 1;
  info.st_mtim.tv_nsec = 2;
  info.st_ino = 16;
  EXPECT_EQ(FileETag(info), "\"ff-3b9aca02-10\"");
}

}  // namespace
}  // namespace bridge::http
