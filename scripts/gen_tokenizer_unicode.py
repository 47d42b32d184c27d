#!/usr/bin/env python3
"""scripts/gen_tokenizer_unicode.py > runtime/tokenizer_unicode.c — regenerates
the code point ranges of \\p{L} and \\p{N} (the GPT-2 pre-tokenizer regex)
from Python's unicodedata. Run with the Python whose Unicode version you want."""
import unicodedata


def ranges(pred):
    out, start = [], None
    for c in range(0x110000):
        ok = pred(c)
        if ok and start is None:
            start = c
        if not ok and start is not None:
            out.append((start, c - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def table(name, rs):
    s, line = "static const uint32_t %s[][2] = {\n" % name, "   "
    for it in ("{0x%X, 0x%X}" % r for r in rs):
        if len(line) + len(it) + 2 > 118:
            s, line = s + line + "\n", "   "
        line += " " + it + ","
    return s + line + "\n};\n"


def main():
    cat = lambda c: unicodedata.category(chr(c))
    src = open(__file__.replace("scripts/gen_tokenizer_unicode.py", "runtime/tokenizer_unicode.c")).read()
    head = src[: src.index("static const uint32_t letters")]
    tail = src[src.index("static int in_ranges") :]
    head = head.split("(Unicode ")[0] + "(Unicode %s) by" % unicodedata.unidata_version + head.split(") by", 1)[1]
    print(head + table("letters", ranges(lambda c: cat(c).startswith("L"))) + "\n" +
          table("numbers", ranges(lambda c: cat(c).startswith("N"))) + "\n" + tail, end="")


if __name__ == "__main__":
    main()
