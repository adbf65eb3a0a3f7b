// libFuzzer target for the DCAP quote parser (and the PCK certificate SGX extension parser that
// runs on what the quote carries). Seed with tests/data/attestation/*.quote.
// Checks: no crash or sanitizer report, and parse(encode(parse(x))) gives the same quote.
#include "common/ossl.h"
#include "attest/pck_cert.h"
#include "attest/quote.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moss::attest;
  std::span<const uint8_t> input(data, size);
  (void)parse_pck_extension_der(input);  // arbitrary DER, cheap
  auto quote = parse_quote(input);
  if (!quote.ok()) return 0;
  auto again = parse_quote(encode_quote(*quote));
  if (!again.ok() || again->signed_region != quote->signed_region ||
      again->qe_report_raw != quote->qe_report_raw || again->qe_auth_data != quote->qe_auth_data ||
      again->pck_chain_pem != quote->pck_chain_pem)
    std::abort();  // the parser and the encoder disagree: a real bug
  auto chain = ossl::parse_pem_chain(quote->pck_chain_pem);
  if (chain.ok()) (void)parse_pck_extensions((*chain)[0].get());
  return 0;
}
