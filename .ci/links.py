"""Links and navigation of the site `build_docs.py` builds: what it rewrites in `_docs/`, what its check asserts, and the
mkdocs hook that gives each page its table of contents and title.

Rewritten at build time (`rewrite_site`, after mkdocs):
- a link to our own deployed site (settings.ini's `doc_host` + `doc_baseurl`, which nbdev writes into every link on
  a name in backticks) becomes relative, so the same pages work locally and deployed;
- nbdev's links left as raw markdown in the comments of a `show_doc` signature (`# see [`data_root`](https://...)`)
  become links (their text plain, without markdown's backticks), as do other markdown links to a page or a URL;
- an `#anchor` spelled as nbdev spells it (`#sampler.replay`) becomes the id the page has (`#samplerreplay`), and
  one on a name the page does not document (a private `_helper`: no heading) the code cell that defines it.

mkdocs hook (mkdocs.yml names this file under `hooks`): mkdocs-jupyter builds the table of contents from the notebook
with its inline code cut out ("The pieces of ", linking to an id no heading has). `on_page_content` builds it from the
headings of the page's markdown cells as rendered, inline code kept, and titles the home page `Home` (the sidebar
read "efm › efm": the site name, then the index page's title).

Checked (`site_problems`, no browser, seconds): raw markdown links left in the prose, dead local links and #anchors,
absolute links to our own site, and previous/next links at the foot of a page that do not follow the nav.
"""
import bisect, posixpath, re, unicodedata
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

HOME_TITLE = 'Home'
NOT_PAGES = ('search', 'assets', 'screenshots')


def content_pages(site: Path):
    "The site's pages (relative posix paths), without mkdocs' 404 page, search, assets and the check's screenshots."
    return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html')
                  if p.name != '404.html' and p.relative_to(site).parts[0] not in NOT_PAGES)


def slug(s: str) -> str:
    "A heading's id as mkdocs-jupyter makes it (its `slugify`): ascii, lower case, only word characters and hyphens."
    s = unicodedata.normalize('NFKD', s).encode('ascii', 'ignore').decode('ascii')
    return re.sub(r'[-\s]+', '-', re.sub(r'[^\w\s-]', '', s).strip().lower())


def own_site(doc_url: str):
    "A regex matching the start of a link to our deployed site, `https://efm-project.github.io/efm`, over any scheme."
    host_path = re.sub(r'^[a-z]+:', '', doc_url.rstrip('/'), flags=re.I)
    return re.compile(r'^(?:https?:)?' + re.escape(host_path) + r'(?=[/?#]|$)', re.I)


def resolve(page: str, url: str):
    "(target page, fragment) a link on `page` points to, relative to the site root; None for a link off the site."
    u = urlsplit(url)
    if u.scheme or u.netloc: return None
    path = unquote(u.path)
    if not path: return page, unquote(u.fragment)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
    if path.endswith('/') or target == '.': target = posixpath.join(target, 'index.html').removeprefix('./')
    return target, unquote(u.fragment)


# ---------------------------------------------------------------- build time: rewrite
ID = re.compile(r'''<[a-zA-Z][^>]*?\sid=["']([^"']+)["']|<a\s[^>]*?\bname=["']([^"']+)["']''')
ATTR = re.compile(r'''(\s(?:href|src)=)(["'])(.*?)\2''', re.S)
COMMENT = re.compile(r'(<span class="c[1m]?">)(.*?)(</span>)', re.S)  # Pygments' comment spans
DOCLINK = re.compile(r'\[(`?)([^`<>\[\]\n]+)\1\]\(((?:https?:)?//[^()\s<>"\']+|[\w./-]+\.html(?:#[^()\s<>"\']*)?)\)')
# a markdown link in a comment: nbdev's on a name ([`name`](url), maybe in backticks) or a link to a page or a URL


def page_ids(html: str) -> set:
    "The ids (and `<a name>`s) one page has: what a `#fragment` can land on."
    return {a or b for a, b in ID.findall(html)}


CELL = re.compile(r'<div class="jp-Cell [^"]*" id="([^"]+)"')
DEF = re.compile(r'<span class="k">(?:def|class)</span>(?:<span class="w">\s*</span>|\s)*<span class="n[fc]">(\w+)</span>')


def code_cells(html: str) -> dict:
    "The id of the cell that defines each name (`def`/`class`, lower case, first wins) on one page."
    cells = [(m.start(), m[1]) for m in CELL.finditer(html)]
    defs = {}
    for m in DEF.finditer(html):
        i = bisect.bisect(cells, (m.start(),)) - 1
        if i >= 0: defs.setdefault(m[1].lower(), cells[i][1])
    return defs


def anchor_for(frag: str, ids: set, slugs: dict, defs: dict) -> str:
    """The id `#frag` means on a page: `frag` itself, the id it slugs to (nbdev writes `#sampler.replay` for the heading
    `samplerreplay`), or, for a name without a heading, the code cell defining it (or its class, for `_Log.read`)."""
    if frag in ids: return frag
    if slug(frag) in slugs: return slugs[slug(frag)]
    name = frag.lower()
    return defs.get(name) or defs.get(name.split('.')[0]) or frag


class Rewriter:
    "Rewrites the links of every page of a built site; the ids of all pages are read first, for `#anchor`s."
    def __init__(self, site: Path, doc_url: str):
        self.site, self.own = site, own_site(doc_url)
        html = {p: (site / p).read_text() for p in content_pages(site)}
        self.ids = {p: page_ids(h) for p, h in html.items()}
        self.slugs = {p: {slug(i): i for i in sorted(ids, reverse=True)} for p, ids in self.ids.items()}
        self.defs = {p: code_cells(h) for p, h in html.items()}

    def relative(self, url: str, page: str) -> str:
        "`url` as `page` should link it: our own site's absolute links made relative, `#anchor`s as the target spells them."
        m = self.own.match(url)
        if m:
            u = urlsplit(url[m.end():])
            path = u.path.lstrip('/')
            if not path or path.endswith('/'): path += 'index.html'
            url = posixpath.relpath(path, posixpath.dirname(page) or '.') + (f'?{u.query}' if u.query else '') \
                + (f'#{u.fragment}' if u.fragment else '')
        r = resolve(page, url)
        if r and r[1] and r[0] in self.ids:
            fixed = anchor_for(r[1], self.ids[r[0]], self.slugs[r[0]], self.defs[r[0]])
            if fixed != r[1]: url = url[:url.index('#') + 1] + fixed
        return url

    def page(self, page: str, html: str) -> str:
        "One page rewritten: raw doc links in code comments made links, then every href/src made relative."
        def link(m): return f'<a href="{escape(unescape(m[3]))}">{m[2]}</a>'
        html = COMMENT.sub(lambda m: m[1] + DOCLINK.sub(link, m[2]) + m[3], html)
        def attr(m):
            url = unescape(m[3])
            new = self.relative(url, page)
            return m[0] if new == url else f'{m[1]}{m[2]}{escape(new)}{m[2]}'
        return ATTR.sub(attr, html)

    def run(self) -> int:
        "Rewrite every page in place; the number of pages changed."
        n = 0
        for p in self.ids:
            f = self.site / p
            old = f.read_text()
            new = self.page(p, old)
            if new != old: f.write_text(new); n += 1
        return n


def rewrite_site(site: Path, doc_url: str) -> int:
    "Build-time link rewriting of the whole site (see the module's docstring); returns how many pages changed."
    return Rewriter(site, doc_url).run()


# ---------------------------------------------------------------- check: static pass over the built HTML
VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source', 'track', 'wbr'}
CODE = {'pre', 'code', 'script', 'style', 'textarea', 'svg', 'math', 'noscript', 'template', 'kbd', 'samp'}
BLOCK = {'address', 'article', 'aside', 'blockquote', 'body', 'br', 'dd', 'details', 'div', 'dl', 'dt', 'figcaption',
         'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'label', 'li', 'main', 'nav',
         'ol', 'p', 'pre', 'section', 'summary', 'table', 'td', 'th', 'tr', 'ul'}
LINK_ATTRS = {('a', 'href'), ('link', 'href'), ('img', 'src'), ('script', 'src'), ('source', 'src'), ('iframe', 'src'),
              ('video', 'src'), ('audio', 'src')}


class PageScan(HTMLParser):
    """One page as the check reads it: `ids`; `links` (tag, url, text); `prose`, the text of each block outside code
    (a block's inline elements read together, so `[` + a link + `](x.html)` reads `[](x.html)`); `inline_code`, the
    text of each `<code>` outside `<pre>`; `footer`, the previous/next links at its foot."""
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.prose, self.inline_code, self.footer = set(), [], [], [], {}
        self._stack, self._buf, self._code, self._a = [], [], None, None
        self.feed(html); self.close(); self._flush()

    def _flush(self):
        s = ' '.join(''.join(self._buf).split())
        if s: self.prose.append(s)
        self._buf = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        if tag in BLOCK: self._flush()
        for t, k in LINK_ATTRS:
            if tag == t and a.get(k) is not None:
                self.links.append(dict(tag=tag, url=a[k], text=a.get('alt') or a.get('aria-label') or ''))
        if tag == 'a':
            self._a = self.links[-1] if a.get('href') is not None else None
            cls = a.get('class') or ''
            for side in ('prev', 'next'):
                if f'md-footer__link--{side}' in cls: self.footer[side] = a.get('href')
        if tag == 'code' and 'pre' not in self._stack: self._code = []
        if tag not in VOID: self._stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self._stack and self._stack[-1] == tag: self._stack.pop()

    def handle_endtag(self, tag):
        if tag == 'a': self._a = None
        if tag == 'code' and self._code is not None and 'pre' not in self._stack:
            self.inline_code.append(''.join(self._code)); self._code = None
        if tag in self._stack:
            while self._stack.pop() != tag: pass
        if tag in BLOCK: self._flush()

    def handle_data(self, data):
        if self._a is not None and not self._a['text']: self._a['text'] = ' '.join(data.split())[:60]
        if self._code is not None: self._code.append(data)
        if not CODE.intersection(self._stack): self._buf.append(data)


MATH = re.compile(r'\$\$.*?\$\$|\$[^$\n]*\$|\\\(.*?\\\)|\\\[.*?\\\]', re.S)  # TeX, typeset in the browser
RAW_LINK = re.compile(r'\]\([^()\s]+\)')                                   # `](target)`: a link markdown did not make
RAW_PAGE_LINK = re.compile(r'\[[^\[\]]*\]\(([^()\s]+\.(?:html|ipynb)(?:#[^()\s]*)?|(?:https?:)?//[^()\s]+)\)')


def _context(s: str, m, n=70) -> str:
    return ('...' if m.start() > n else '') + s[max(0, m.start() - n):m.end() + 20].strip() + ('...' if m.end() + 20 < len(s) else '')


def raw_markdown_links(scan: PageScan, own):
    """Raw markdown links a reader sees: `](target)` in prose outside math, and inline code that is nothing but a
    markdown link to one of our pages (a link meant, not markdown shown: code cells and `<pre>` are left alone)."""
    bad = []
    for s in scan.prose:
        for m in RAW_LINK.finditer(MATH.sub(' ', s)):
            bad.append(f'raw markdown link in the text: {_context(MATH.sub(" ", s), m)!r}')
    for c in scan.inline_code:
        m = RAW_PAGE_LINK.fullmatch(c.strip())
        if m and (not re.match(r'(?:https?:)?//', m[1]) or own.match(m[1])):
            bad.append(f'raw markdown link in inline code: {c.strip()!r}')
    return bad


def link_problems(page: str, scan: PageScan, ids_of: dict, files: set, own):
    """Dead local links (no such file, or no such #anchor on the target page) and absolute links to our own site;
    `ids_of`: each page's ids, `files`: every file of the site (a folder counts by its index.html)."""
    bad = []
    for ln in scan.links:
        url, what = ln['url'].strip(), f"{ln['tag']} {ln['url']!r}" + (f" ({ln['text']!r})" if ln['text'] else '')
        if own.match(url):
            bad.append(f'absolute link to our own site: {what}'); continue
        r = resolve(page, url)
        if r is None: continue
        target, frag = r
        if target == '..' or target.startswith('../'): bad.append(f'dead link {what}: outside the site')
        elif target not in files: bad.append(f'dead link {what}: no file {target}')
        elif frag and target in ids_of and frag not in ids_of[target]: bad.append(f'dead link {what}: no #{frag} on {target}')
    return bad


def footer_problems(page: str, scan: PageScan, order: list):
    "The previous/next links at the foot of `page` against the nav order (`order`: the pages, first to last)."
    if page not in order: return []
    i, bad = order.index(page), []
    for side, want in (('prev', order[i - 1] if i else None), ('next', order[i + 1] if i + 1 < len(order) else None)):
        r = resolve(page, scan.footer[side]) if side in scan.footer else None
        got = r[0] if r else None
        if got != want: bad.append(f'{"previous" if side == "prev" else "next"} link at the foot goes to {got}, the nav to {want}')
    return bad


def site_problems(site: Path, doc_url: str, order: list = None):
    """The static pass of the check: (page, reason) for each raw markdown link, dead local link or #anchor, absolute
    link to our own site and, given the nav `order`, previous/next link that does not follow it."""
    own, pages = own_site(doc_url), content_pages(site)
    scans = {p: PageScan((site / p).read_text()) for p in pages}
    ids_of = {p: s.ids for p, s in scans.items()}
    files = {f.relative_to(site).as_posix() for f in site.rglob('*') if f.is_file()}
    out = []
    for p, s in scans.items():
        bad = raw_markdown_links(s, own) + link_problems(p, s, ids_of, files, own) + (footer_problems(p, s, order) if order else [])
        out += [(p, b) for b in dict.fromkeys(bad)]
    return out


# ---------------------------------------------------------------- mkdocs hook: table of contents and titles
HEADING = re.compile(r'<h([1-6])\b[^>]*?\sid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def toc_label(inner: str) -> str:
    "A heading's inner HTML as a TOC entry: without its ¶ anchor, its links unwrapped (no link in a link), code kept."
    inner = re.sub(r'<a\s[^>]*class="anchor-link"[^>]*>.*?</a>', '', inner, flags=re.S)
    return re.sub(r'</?a\b[^>]*>', '', inner).strip()


def markdown_headings(html: str):
    "(level, id, label) of each heading of the page's markdown cells, in order (show_doc's, in outputs, left out)."
    for cell in re.split(r'(?=<div class="jp-Cell )', html):
        if 'jp-MarkdownCell' in cell.split('>', 1)[0]:
            for m in HEADING.finditer(cell): yield int(m[1]), m[2], toc_label(m[3])


def toc_tokens(headings) -> list:
    "Headings nested by level, as Python-Markdown's `toc_tokens` (what mkdocs' `get_toc` takes)."
    root, stack = [], [(0, None)]
    for level, id_, name in headings:
        tok = dict(level=level, id=id_, name=name, children=[])
        while stack[-1][0] >= level: stack.pop()
        (stack[-1][1]['children'] if stack[-1][1] else root).append(tok)
        stack.append((level, tok))
    return root


def on_page_content(html, page, config, files, **kw):
    "mkdocs hook: the page's TOC from its rendered headings, its title from its h1 (inline code kept), the home page `Home`."
    from mkdocs.structure.toc import get_toc
    heads = list(markdown_headings(html))
    if heads: page.toc = get_toc(toc_tokens(heads))
    h1 = next((name for level, _, name in heads if level == 1), None)
    if page.is_homepage: page.title = HOME_TITLE
    elif h1: page.title = escape(unescape(re.sub(r'<[^>]+>', '', h1)).strip(), quote=False)  # plain text, as mkdocs' titles
    return html
