#!/usr/bin/python3
"""Writes tests/llm/golden/pretok.txt: random texts split by the pre-tokenizer regexes as
written in llama.cpp (GPT-2; llama-3 with its case-insensitive contractions spelled out as
llama.cpp does; smollm = \\p{N} then GPT-2), run by Python's own regex engine with \\p{L},
\\p{N} and \\s expanded to explicit classes from unicodedata (Python's re has no \\p{..}, and
its \\s also matches U+001C..U+001F, which White_Space does not). The C matchers in
llm/tokenizer_pre.c are checked against these splits (test_tokenizer).

Format: one case per line, "<pre> <word> <word> ...", each word the hex of its UTF-8 bytes;
pre is gpt2, llama3 or smollm. Usage: tests/llm/make_pretok_golden.py > tests/llm/golden/pretok.txt
"""
import random
import re
import sys
import unicodedata


def char_class(pred):
    parts, start, prev = [], None, None
    for cp in range(0x110000):
        if pred(cp):
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            parts.append('\\U%08x-\\U%08x' % (start, prev) if prev > start else '\\U%08x' % start)
            start = None
    if start is not None:
        parts.append('\\U%08x-\\U%08x' % (start, prev))
    return ''.join(parts)


def cat(cp):
    return unicodedata.category(chr(cp))


L = char_class(lambda c: cat(c)[0] == 'L')
N = char_class(lambda c: cat(c)[0] == 'N')
S = char_class(lambda c: chr(c).isspace() and not 0x1C <= c <= 0x1F)

GPT2 = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^%s%s%s]+|[%s]+(?![^%s])|[%s]+"
                  % (L, N, S, L, N, S, S, S))
LLAMA3 = re.compile(r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n%s%s]?[%s]+|"
                    r"[%s]{1,3}| ?[^%s%s%s]+[\r\n]*|[%s]*[\r\n]+|[%s]+(?![^%s])|[%s]+"
                    % (L, N, L, N, S, L, N, S, S, S, S))
DIGIT = re.compile('[%s]' % N)

# Characters that exercise every branch: letters of several scripts, digits of two, marks,
# punctuation, symbols, the whitespace zoo, apostrophes, controls, unassigned, emoji.
POOL = (list("abcXYZ sStTrReEvVmMlLdD'''''  \t\r\n\n.,!?-_()\"$+<=>^`|~0123456789012345") +
        ['\u00e9', '\u0416', '\u0436', '\u65e5', '\u672c', '\u0e01', '\u0663', '\u0664', '\u00b2',
         '\u2167', '\u0301', '\u0308', '\u00a0', '\u3000', '\u2028', '\u0085', '\u000b', '\u000c',
         '\u001c', '\u001f', '\u0007', '\u0378', '\u2014', '\u00ab', '\u20ac', '\u00a9',
         '\U0001f999', '\U0001f600', '\u200d', '\ufe0f', '\u017f', '\u212a'])


def split(rx, text):
    words = rx.findall(text)
    assert ''.join(words) == text, (rx, text)
    return words


def smollm(text):
    words, start = [], 0
    for m in DIGIT.finditer(text):
        words += split(GPT2, text[start:m.start()]) + [m.group()]
        start = m.end()
    return words + split(GPT2, text[start:])


def main():
    rng = random.Random(20261126)
    out = sys.stdout
    for i in range(240):
        n = rng.randint(1, 24)
        text = ''.join(rng.choice(POOL) for _ in range(n))
        pre = ('gpt2', 'llama3', 'smollm')[i % 3]
        words = split(GPT2, text) if pre == 'gpt2' else split(LLAMA3, text) if pre == 'llama3' else smollm(text)
        out.write(pre + ''.join(' ' + w.encode('utf-8').hex() for w in words) + '\n')


if __name__ == '__main__':
    main()
