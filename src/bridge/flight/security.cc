// The listening port's credentials: plaintext, TLS, or mutual TLS (client certificates signed
// by a given CA required and verified). The PEM files are read and checked with OpenSSL
// before gRPC sees them, so that a bad file is a clear error from FlightServer::Start rather
// than a port that silently fails to bind.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "bridge/flight/server_internal.h"
#include "grpcpp/security/server_credentials.h"

namespace bridge::flight {
namespace {

constexpr size_t kMaxPemBytes = 1 << 20;

// Never asks for a pass phrase (OpenSSL would prompt on the terminal): encrypted keys fail.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return 0; }

// Returns the contents of a PEM file. IoError when it cannot be read, InvalidArgument when it
// is empty or implausibly large.
Result<std::string> ReadPemFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return IoError("flight: cannot read the TLS ", what, " '", path, "': ", std::strerror(errno));
  }
  std::string text;
  char buffer[8192];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxPemBytes) {
      return InvalidArgument("flight: the TLS ", what, " '", path, "' is larger than ",
                             kMaxPemBytes, " bytes: not a PEM file");
    }
  }
  if (in.bad()) {
    return IoError("flight: cannot read the TLS ", what, " '", path, "': ", std::strerror(errno));
  }
  if (text.empty()) return InvalidArgument("flight: the TLS ", what, " '", path, "' is empty");
  return text;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& text) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Returns the first certificate of a PEM text that must hold at least one; InvalidArgument
// naming the file otherwise (also when a later block is not a certificate).
Result<X509Ptr> ParseCertificates(const std::string& pem, const std::string& path,
                                  const char* what) {
  auto bio = MemoryBio(pem);
  if (bio == nullptr) return Internal("flight: OpenSSL cannot allocate a buffer");
  X509Ptr first;
  int count = 0;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) break;
    if (first == nullptr) first = std::move(cert);
    ++count;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (count == 0) {
    return InvalidArgument("flight: the TLS ", what, " '", path,
                           "' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  return first;
}

Result<KeyPtr> ParsePrivateKey(const std::string& pem, const std::string& path) {
  auto bio = MemoryBio(pem);
  if (bio == nullptr) return Internal("flight: OpenSSL cannot allocate a buffer");
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    unsigned long error = ERR_peek_last_error();
    char reason[256] = {0};
    ERR_error_string_n(error, reason, sizeof(reason));
    ERR_clear_error();
    return InvalidArgument(
        "flight: the TLS key '", path,
        "' holds no usable PEM private key (encrypted keys are not supported): ", reason);
  }
  return key;
}

}  // namespace

Status AddListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                        const FlightServerOptions& options, int* port) {
  const std::string& cert_file = options.tls_cert_file;
  const std::string& key_file = options.tls_key_file;
  const std::string& ca_file = options.tls_client_ca_file;
  if (cert_file.empty() && key_file.empty()) {
    if (!ca_file.empty()) {
      return InvalidArgument(
          "flight: tls_client_ca_file needs tls_cert_file and tls_key_file (mutual TLS is TLS)");
    }
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
    return OkStatus();
  }
  if (cert_file.empty() || key_file.empty()) {
    return InvalidArgument("flight: TLS needs both tls_cert_file and tls_key_file (got only ",
                           cert_file.empty() ? "the key" : "the certificate", ")");
  }

  BRIDGE_ASSIGN_OR_RETURN(std::string cert_pem, ReadPemFile(cert_file, "certificate"));
  BRIDGE_ASSIGN_OR_RETURN(std::string key_pem, ReadPemFile(key_file, "key"));
  BRIDGE_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificates(cert_pem, cert_file, "certificate"));
  BRIDGE_ASSIGN_OR_RETURN(KeyPtr key, ParsePrivateKey(key_pem, key_file));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("flight: the TLS key '", key_file, "' does not match the certificate '",
                           cert_file, "'");
  }

  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!ca_file.empty()) {
    BRIDGE_ASSIGN_OR_RETURN(std::string ca_pem, ReadPemFile(ca_file, "client CA"));
    BRIDGE_RETURN_NOT_OK(ParseCertificates(ca_pem, ca_file, "client CA").status());
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    ssl.pem_root_certs = std::move(ca_pem);
  }
  ssl.pem_key_cert_pairs.push_back({std::move(key_pem), std::move(cert_pem)});
  builder.AddListeningPort(address, grpc::SslServerCredentials(ssl), port);
  return OkStatus();
}

}  // namespace bridge::flight
