#include "common/rfc3339.h"

namespace moss {

Result<std::time_t> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)
  if (text.size() < 20) return invalid_argument("bad RFC 3339 time '{}'", text);
  auto num = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  struct tm tm {};
  int y, mo, d, h, mi, s;
  bool ok = num(0, 4, y) && text[4] == '-' && num(5, 2, mo) && text[7] == '-' && num(8, 2, d) &&
            (text[10] == 'T' || text[10] == 't' || text[10] == ' ') && num(11, 2, h) &&
            text[13] == ':' && num(14, 2, mi) && text[16] == ':' && num(17, 2, s);
  if (!ok) return invalid_argument("bad RFC 3339 time '{}'", text);
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  }
  std::string_view zone = text.substr(pos);
  if (zone != "Z" && zone != "z" && zone != "+00:00")
    return invalid_argument("time '{}' must be in UTC (Z)", text);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return invalid_argument("bad RFC 3339 time '{}'", text);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return timegm(&tm);
}

std::string format_rfc3339(std::time_t t) {
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace moss
