#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""check_links.py - every relative reference in the project's Markdown resolves inside the
repository (run by ctest as test_doc_links in the plain build).

usage: tools/check_links.py [REPO_ROOT]      (default: the directory above tools/)

Checked in README.md and docs/**/*.md, outside fenced code blocks:
  - every Markdown link and image, [text](target) and [label]: target, that is not a URL
    (scheme:) : its file exists, inside the repository; a #fragment on a Markdown file (or on
    the page itself) names one of its headings, as GitHub makes the anchor;
  - every Markdown file named in backticks (`docs/design.md`, `harness.md`): it exists,
    relative to the page or to the repository root (names with <, *, $ are patterns, skipped).
Prints one line per broken reference (file:line: what) and exits 1 if there is any.
"""
import os
import re
import sys
import unicodedata

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^()\s>]+(?:\([^()\s]*\))?)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
MD_NAME = re.compile(r"^[A-Za-z0-9_./-]+\.md$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def pages(root):
    yield os.path.join(root, "README.md")
    for d, dirs, files in os.walk(os.path.join(root, "docs")):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".md"):
                yield os.path.join(d, f)


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks."""
    fenced = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if not fenced:
                yield n, line.rstrip("\n")


def slug(heading):
    """GitHub's anchor for a heading: inline markup dropped, lower case, punctuation other than
    - and _ removed, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)                         # inline HTML
    text = text.lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "-_" or cat[0] in "LN" or cat == "Mn":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


_anchors = {}


def anchors(path):
    if path not in _anchors:
        seen, found = {}, set()
        for _, line in prose_lines(path):
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            k = seen.get(s, 0)
            seen[s] = k + 1
            found.add(s if k == 0 else "%s-%d" % (s, k))
        _anchors[path] = found
    return _anchors[path]


def inside(root, path):
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def check(root):
    root = os.path.realpath(root)
    errors = []
    for page in pages(root):
        rel_page = os.path.relpath(page, root)
        here = os.path.dirname(page)
        for n, line in prose_lines(page):
            where = "%s:%d" % (rel_page, n)
            spans = [m.group(2).strip() for m in CODE_SPAN.finditer(line)]
            without_code = CODE_SPAN.sub("", line)
            targets = [m.group(1) for m in INLINE_LINK.finditer(without_code)]
            m = REF_DEF.match(without_code)
            if m:
                targets.append(m.group(1))
            for t in targets:
                if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", t):  # http:, https:, mailto:, ...
                    continue
                path, _, frag = t.partition("#")
                target = os.path.normpath(os.path.join(here, path)) if path else page
                if not os.path.exists(target):
                    errors.append("%s: link to %s: no such file" % (where, t))
                elif not inside(root, target):
                    errors.append("%s: link to %s: outside the repository" % (where, t))
                elif frag and target.endswith(".md") and frag not in anchors(target):
                    errors.append("%s: link to %s: no heading with anchor #%s in %s"
                                  % (where, t, frag, os.path.relpath(target, root)))
            for s in spans:
                if not MD_NAME.match(s):
                    continue
                candidates = [os.path.join(here, s), os.path.join(root, s)]
                if not any(os.path.isfile(c) and inside(root, c) for c in candidates):
                    errors.append("%s: `%s`: no such file in the repository" % (where, s))
    return errors


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    errors = check(root)
    for e in errors:
        print(e)
    n = sum(1 for _ in pages(os.path.realpath(root)))
    print("%d Markdown pages checked, %d broken references" % (n, len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
