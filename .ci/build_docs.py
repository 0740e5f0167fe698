#!/usr/bin/env python
"""Build the documentation site into `_docs/` and, with `--check`, check its links and open it in headless Chromium.

Where Quarto is installed this is nbdev's own `nbdev_docs`. Where it is not (Quarto has no wheel or Debian
package), the same notebooks go through nbdev's own processing (`nbdev_proc_nbs` -> `_proc/`: `show_doc`
rendered, hidden and exported cells handled, frontmatter extracted) and are rendered by mkdocs-material +
mkdocs-jupyter, with MathJax bundled from npm so the site needs no network. `README.md` is written from the
processed `index.ipynb` (what `nbdev_readme` does with Quarto).

Layout (`SITE_CSS`, `polish_pages`): printed text (stdout, text/plain: tables, dicts) keeps its lines and scrolls
sideways in its box; code wraps, each line hanging under its own indent (every line of a highlighted block in a span);
show_doc's signature of a class reads `class Name(...):`, not `def Name(...)->None:`.

Links and navigation (`links.py`): the nav orders the chapters and the experiments as the index's "Map of the
notebooks" does, every page ends with previous/next links in that order, the home page is `Home` under the site name,
and the table of contents keeps inline code. After mkdocs, links to our own deployed site (doc_host + doc_baseurl,
which nbdev writes into every link on a name) are made relative, so the local site works.

`--check` first reads every page's HTML (seconds, no browser) and fails, listing page (notebook): reason, on a raw
markdown link left in the text, a dead local link or #anchor, an absolute link to our own site, or previous/next
links that do not follow the nav. It then opens every page in headless Chromium and fails on a MathJax error or TeX
left unrendered, a raw `#|` directive, a code block cut off, a broken image or missing file, a fetch from the
network, a chapter page without its code (some code block, and each `def`/`class` of its `#| exports` cells),
or a missing title, heading or equation; it keeps a 1280-wide screenshot of each page in `_docs/screenshots/`.
`--static` leaves the browser out (the first pass only).

Usage: build_docs.py [--check | --check-only] [--static] [--no-quarto]
"""
import argparse, ast, functools, http.server, json, os, posixpath, re, shutil, subprocess, sys, tempfile, threading, time
from html import unescape
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import links  # noqa: E402  (links and navigation; also mkdocs' hook module)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROC, SITE, WORK = ROOT / '_proc', ROOT / '_docs', ROOT / '.mkdocs'
PAGES = WORK / 'docs'
MATHJAX_PKG = 'mathjax@2.7.9'  # MathJax 2: the version nbconvert's HTML template configures
MATHJAX_MARK = 'EFM_LOCAL_MATHJAX'


def _doc_url():
    from nbdev.config import get_config
    c = get_config()
    return c.doc_host.rstrip('/') + c.doc_baseurl.rstrip('/')


DOC_URL = _doc_url()
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
                  '--disable-component-update', '--disable-sync', '--disable-quic', '--hide-scrollbars']


def run(cmd, **kw):
    print('+', ' '.join(map(str, cmd)), flush=True)
    return subprocess.run(list(map(str, cmd)), check=True, cwd=kw.pop('cwd', ROOT), **kw)


# ---------------------------------------------------------------- notebook -> page
DIRECTIVE = re.compile(r'^\s*#\s*\|\s*(.*)$')


def directives(src: str):
    "Split a code cell into its leading `#|` directives (a dict) and the remaining source."
    lines = src.split('\n')
    d, i = {}, 0
    while i < len(lines) and (DIRECTIVE.match(lines[i]) or (d and not lines[i].strip())):
        m = DIRECTIVE.match(lines[i])
        if m:
            k, _, v = m.group(1).partition(':')
            d[k.strip()] = v.strip()
        i += 1
    return d, '\n'.join(lines[i:]).strip('\n')


PANDOC_ATTRS = re.compile(r'\{(?:target|style|\.|#)[^{}\n]*\}')


DOCLINK = r'\[`[^`\n]+`\]\([^()\s]+\)'  # nbdev's link on a name in backticks: [`name`](https://.../page.html#name)
NESTED_LINK = re.compile(r'\[((?:[^\[\]\n]|' + DOCLINK + r')*' + DOCLINK + r'(?:[^\[\]\n]|' + DOCLINK + r')*)\]\(')


def unnest_links(md: str) -> str:
    """nbdev links a name in backticks even inside the text of a link the notebook wrote: `[`f`](page.html)` becomes
    `[[`f`](https://...#f)](page.html)`, which markdown cannot nest and leaves as raw text. Keep the notebook's link."""
    return NESTED_LINK.sub(lambda m: '[' + re.sub(r'\[(`[^`\n]+`)\]\([^()\s]+\)', r'\1', m[1]) + '](', md)


def _escape_heading_underscores(md: str) -> str:
    "show_doc's `### Sampler.__call__` would read Sampler.**call** (and slug to an id nbdev's links miss): escape `_`."
    out, fenced = [], False
    for line in md.split('\n'):
        if line.lstrip().startswith('```'): fenced = not fenced
        out.append(re.sub(r'(?<!\\)_', r'\_', line) if not fenced and re.match(r'#{1,6} ', line) else line)
    return '\n'.join(out)


def _plain_markdown(o: dict) -> dict:
    """show_doc's markdown carries Pandoc attributes (`{target=...}`) that only Quarto understands: drop them; unnest
    nbdev's links inside links and escape underscores in headings, as in markdown cells."""
    md = o.get('data', {}).get('text/markdown')
    if md is None: return o
    md = ''.join(md) if isinstance(md, list) else md
    md = _escape_heading_underscores(unnest_links(PANDOC_ATTRS.sub('', md)))
    return dict(o, data=dict(o['data'], **{'text/markdown': md}))


WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'


def page_from_proc(nb: dict):
    """Turn one nbdev-processed notebook into a notebook mkdocs-jupyter renders as-is; returns (nb, title, out_name).
    Widget state and widget views are dropped: with them nbconvert's page fetches the widget renderer from unpkg.com,
    and a saved widget needs a live kernel to do anything anyway."""
    cells, title, out = [], None, None
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'raw' and src.lstrip().startswith('---'):
            fm = yaml.safe_load(src.strip().strip('-').strip()) or {}
            title, out = fm.get('title'), fm.get('output-file')
            md = f"# {title}\n" if title else ''
            if fm.get('description'): md += f"\n> {fm['description']}\n"
            if md: cells.append(dict(cell_type='markdown', metadata={}, source=md))
            continue
        if c['cell_type'] == 'code':
            d, body = directives(src)
            if d.get('include', '').lower() == 'false' or 'hide' in d: continue
            c = dict(c, source=body, metadata=dict(c.get('metadata', {})))
            tags = []
            if d.get('echo', '').lower() == 'false' or not body.strip(): tags.append('remove_input')
            if d.get('output', '').lower() == 'false': c['outputs'] = []
            c['outputs'] = [_plain_markdown(o) for o in c.get('outputs', []) if WIDGET_VIEW not in o.get('data', {})]
            if not body.strip() and not c.get('outputs'): continue
            c['metadata']['tags'] = tags
        else:
            c = dict(c, source=unnest_links(src) if c['cell_type'] == 'markdown' else src)
        cells.append(c)
    meta = {k: v for k, v in nb.get('metadata', {}).items() if k != 'widgets'}
    return dict(nb, cells=cells, metadata=meta), title, out


MAP_HEADING = re.compile(r'^#+\s*Map of the notebooks', re.M | re.I)


def map_order():
    "The pages (`.html` paths) in the order the index's \"Map of the notebooks\" lists them; [] where there is no map."
    idx = PROC / 'index.ipynb'
    if not idx.exists(): return []
    for c in json.loads(idx.read_text())['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'markdown' and MAP_HEADING.search(src):
            found = re.findall(r'\]\(([\w./-]+\.html)(?:#[^()\s]*)?\)', src)  # relative links: nbdev's (https://...) left out
            return list(dict.fromkeys(posixpath.normpath(h) for h in found))
    return []


def nav_sorted(pages, order):
    """`pages` (index first, then by folder depth and file name) in the map's `order` within each depth; a page the map
    does not list stays right after the page it follows by file name (01b_ifm after 01a_cfm)."""
    rank, after, keyed = {h: i for i, h in enumerate(order)}, {}, []
    for i, pg in enumerate(pages):
        depth = len(pg['nb'].parts)
        if pg['html'] in rank: after[depth] = rank[pg['html']]; key = (depth, rank[pg['html']], 0, i)
        else: key = (depth, after.get(depth, -1), 1, i)
        keyed.append((key, pg))
    return [pg for _, pg in sorted(keyed, key=lambda kp: kp[0])]


def site_pages():
    """Each processed notebook's page, in nav order (index first, then as the index's map orders them): its notebook
    (relative to nbs/), page notebook, title and paths."""
    nbs = sorted(PROC.rglob('*.ipynb'), key=lambda p: (len(p.relative_to(PROC).parts), p.name != 'index.ipynb', str(p)))
    pages = []
    for p in nbs:
        rel = p.relative_to(PROC)
        if any(part.startswith(('_', '.')) for part in rel.parts): continue
        page, title, out = page_from_proc(json.loads(p.read_text()))
        dest = rel.parent / (Path(out).with_suffix('.ipynb').name if out else rel.name)
        pages.append(dict(nb=rel, page=page, title=title or dest.stem, dest=dest, html=dest.with_suffix('.html').as_posix()))
    return nav_sorted(pages, map_order())


def write_pages():
    "Processed notebooks -> `.mkdocs/docs/*.ipynb` plus the nav, in `site_pages` order (index first, then the map's)."
    shutil.rmtree(PAGES, ignore_errors=True); PAGES.mkdir(parents=True)
    nav = []
    for pg in site_pages():
        rel, dest = pg['nb'], PAGES / pg['dest']
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(pg['page'], indent=1))
        label = links.HOME_TITLE if pg['nb'] == Path('index.ipynb') else pg['title']  # the site name is above it already
        entry = {label: str(dest.relative_to(PAGES))}
        if rel.parent == Path('.'): nav.append(entry)
        else:
            sec = rel.parts[0].replace('_', ' ').title()
            grp = next((e for e in nav if sec in e and isinstance(e[sec], list)), None)
            if grp is None: grp = {sec: []}; nav.append(grp)
            grp[sec].append(entry)
    if (ROOT / 'nbs' / 'images').is_dir(): shutil.copytree(ROOT / 'nbs' / 'images', PAGES / 'images')  # pictures the notebooks link to
    (PAGES / EXTRA_CSS).parent.mkdir(parents=True, exist_ok=True); (PAGES / EXTRA_CSS).write_text(SITE_CSS)
    return nav


EXTRA_CSS = 'stylesheets/efm.css'
# Long code lines wrap at spaces, as Quarto's `code-overflow: wrap` (nbs/_quarto.yml) has them, and a token longer than
# the line breaks where it must. mkdocs-jupyter lets long input lines run out of their box and breaks
# outputs anywhere (`word-break: break-all`, mid-number); its inline styles come after this sheet, hence the specificity.
# Printed text (stdout, text/plain: tables, dicts) does not wrap, a wrapped row cannot be read: it scrolls in its box.
# A wrapped line of code hangs under its own indent plus 4 (`hang_code` puts each line in a span.efm-line, --i: its
# indent). The content column is wider than the theme's 61rem where the screen allows.
SITE_CSS = """\
.jupyter-wrapper .jp-Notebook pre, .jupyter-wrapper .jp-Notebook .jp-OutputArea-output pre {
  white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; }
.jupyter-wrapper .jp-Notebook .jp-RenderedText.jp-OutputArea-output pre {
  white-space: pre; overflow-wrap: normal; overflow-x: auto; }
.jupyter-wrapper .jp-Notebook pre .efm-line {
  display: block; padding-left: calc((var(--i, 0) + 4) * 1ch); text-indent: calc((var(--i, 0) + 4) * -1ch); }
.md-grid { max-width: 80rem; }
"""


def mkdocs_config(nav):
    cfg = dict(
        site_name='efm', site_description='Electrostatic Field Matching, derived and implemented',
        docs_dir=str(PAGES), site_dir=str(SITE), use_directory_urls=False, nav=nav, extra_css=[EXTRA_CSS],
        theme=dict(name='material', font=False, palette=dict(primary='indigo'),
                   features=['navigation.sections', 'navigation.footer', 'toc.follow', 'content.code.copy']),
        hooks=[links.__file__],  # the TOC from the rendered headings, the home page's title
        markdown_extensions=['admonition', 'toc', 'tables', 'pymdownx.arithmatex'],
        plugins=['search', {'mkdocs-jupyter': dict(include=['*.ipynb'], execute=False, include_source=False,
                                                   ignore_h1_titles=False, custom_mathjax_url=MATHJAX_MARK,
                                                   remove_tag_config=dict(remove_input_tags=['remove_input']),
                                                   no_prompt=True, cache=False)}])
    f = WORK / 'mkdocs.yml'
    f.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f


def bundle_mathjax():
    "npm's MathJax 2 into `_docs/assets/mathjax` (cached in `.mkdocs/node_modules`); pages point at it relatively."
    pkg = WORK / 'node_modules' / 'mathjax'
    if not (pkg / 'MathJax.js').exists():
        run(['npm', 'install', '--no-audit', '--no-fund', '--prefix', WORK, MATHJAX_PKG])
    dest = SITE / 'assets' / 'mathjax'
    shutil.rmtree(dest, ignore_errors=True)
    skip = shutil.ignore_patterns('unpacked', 'test', '*.otf', '*.eot', '*.svg', 'png', 'imagefonts*')
    shutil.copytree(pkg, dest, ignore=skip)
    for html in SITE.rglob('*.html'):
        depth = len(html.relative_to(SITE).parts) - 1
        s = html.read_text()
        if MATHJAX_MARK in s:
            html.write_text(s.replace(MATHJAX_MARK, '../' * depth + 'assets/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe'))


# ---------------------------------------------------------------- built pages: code blocks
CODE_PRE = re.compile(r'(<div class="highlight(?:-ipynb hl-python)?"><pre>)(.*?)(</pre>)', re.S)  # Pygments' blocks
TAG = re.compile(r'<(/?)(span|a)\b[^>]*>')


def hang_code(html: str) -> str:
    """Each line of a highlighted code block (cells, show_doc signatures) in its own `<span class="efm-line">`, its
    indent as `--i`, for the hanging indent of SITE_CSS. The text is unchanged (newlines stay, inside the line's span:
    copying a selection gives the code as it was; the copy button reads its own copy); a token's span that runs over
    lines (a docstring) is closed at the end of each line and opened again on the next."""
    def block(m):
        lines, open_, out = m[2].split('\n'), [], []
        for k, line in enumerate(lines):
            if k == len(lines) - 1 and not line: break  # the block's final newline
            head = ''.join(t for t, _ in open_)
            for t in TAG.finditer(line):
                if t[1]: open_ and open_.pop()
                else: open_.append((t[0], t[2]))
            text = unescape(re.sub(r'<[^>]+>', '', line))
            ind = len(text) - len(text.lstrip(' '))
            close = ''.join(f'</{name}>' for _, name in reversed(open_))
            nl = '\n' if k < len(lines) - 1 else ''
            out.append(f'<span class="efm-line" style="--i:{ind}">{head}{line}{close}{nl}</span>')
        return m[1] + ''.join(out) + m[3]
    return CODE_PRE.sub(block, html)


SHOW_DOC_DEF = re.compile(  # show_doc's source link, heading and signature, which it writes with `def` for a class too
    r'(<a href="[^"]*/blob/[^/"]+/([^"#]+)#L(\d+)">source</a></p>\s*<h([2-6]) id="[^"]*">(\w+)<a class="anchor-link"'
    r'[^>]*>¶</a></h\4>\s*<div class="highlight"><pre>(?:<span></span>)?)<span class="k">def</span>'
    r'(<span class="w">\s*</span>)<span class="nf">(\w+)</span>(.*?</pre>)', re.S)
INIT_NONE = '<span class="p">)</span><span class="o">-&gt;</span><span class="kc">None</span><span class="p">:</span>'


@functools.cache
def _classes(path: Path):
    "(name, line) of each class in a source file, at its `class` line and at each of its decorators' (show_doc's link)."
    try: tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError): return frozenset()
    return frozenset((n.name, ln) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
                     for ln in (n.lineno, *(d.lineno for d in n.decorator_list)))


def class_signatures(html: str) -> str:
    """show_doc's `def Field(...)->None:` for a class made `class Field(...):` (`->None` is `__init__`'s): only where the
    heading is the signature's name and the source line show_doc links to is that class in our own source."""
    def fix(m):
        if m[5] != m[7] or (m[7], int(m[3])) not in _classes(ROOT / m[2]): return m[0]
        rest = m[8].replace(INIT_NONE, '<span class="p">):</span>')
        return f'{m[1]}<span class="k">class</span>{m[6]}<span class="nc">{m[7]}</span>{rest}'
    return SHOW_DOC_DEF.sub(fix, html)


def polish_pages():
    "The built pages' code blocks: classes' signatures as `class`, lines of code in spans for their hanging indent."
    n = 0
    for p in links.content_pages(SITE):
        f = SITE / p
        old = f.read_text()
        new = hang_code(class_signatures(old))
        if new != old: f.write_text(new); n += 1
    return n


def offline_violations():
    "Scripts, styles and fonts a page would fetch from another host: the site must not need the network."
    bad = []
    pat = re.compile(r'<(?:script|link|img)[^>]+(?:src|href)="(https?:)?//[^"]+"[^>]*>', re.I)
    for html in SITE.rglob('*.html'):
        for m in pat.finditer(html.read_text()):
            tag = m.group(0)
            if re.search(r'rel="(?:canonical|alternate)"', tag): continue
            bad.append(f'{html.relative_to(SITE)}: {tag[:160]}')
    return bad


def readme_from_index():
    "README.md from the processed index notebook: its markdown and code cells with their text outputs."
    page, title, _ = page_from_proc(json.loads((PROC / 'index.ipynb').read_text()))
    parts = ['<!-- WARNING: THIS FILE WAS AUTOGENERATED FROM nbs/index.ipynb! DO NOT EDIT! -->']
    for c in page['cells']:
        src = c['source'] if isinstance(c['source'], str) else ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            if '<!-- WARNING' in src: continue
            src = re.sub(r'\]\(images/', '](nbs/images/', src.strip())  # README sits one folder up
            parts.append(re.sub(r'\]\(([\w/-]+\.html)', r'](' + DOC_URL + r'/\1', src))  # pages: on the docs site
        elif c['cell_type'] == 'code':
            if 'remove_input' not in c['metadata'].get('tags', []): parts.append(f'```python\n{src.strip()}\n```')
            for o in c.get('outputs', []):
                txt = o.get('text') or o.get('data', {}).get('text/markdown') or o.get('data', {}).get('text/plain')
                if 'image/png' in o.get('data', {}): continue
                if txt: parts.append('```\n' + (''.join(txt) if isinstance(txt, list) else txt).rstrip() + '\n```')
    return '\n\n'.join(parts) + '\n'


def proc_notebooks():
    "nbdev's processing for docs (what `nbdev_proc_nbs` does), without its attempt to download and install Quarto."
    from nbdev.doclinks import _build_modidx
    from nbdev.serve import proc_nbs
    _build_modidx()
    proc_nbs(force=True)


def build(use_quarto=True, check_readme=False, warn_links=True):
    if use_quarto and shutil.which('quarto'):
        run([BIN / 'nbdev_docs'])  # the real thing: Quarto renders _docs/ and README.md
        links.rewrite_site(SITE, DOC_URL)
        return
    proc_notebooks()
    nav = write_pages()
    shutil.rmtree(SITE, ignore_errors=True)
    run([BIN / 'mkdocs', 'build', '--quiet', '-f', mkdocs_config(nav)], env=dict(os.environ, NO_MKDOCS_2_WARNING='1'))
    bundle_mathjax()
    print(f'code blocks: class signatures and hanging indents in {polish_pages()} pages')
    print(f'links to {DOC_URL} made relative, #anchors matched to ids: {links.rewrite_site(SITE, DOC_URL)} pages rewritten')
    bad = offline_violations()
    if bad: sys.exit('FAIL: pages load resources from the network:\n  ' + '\n  '.join(bad))
    readme, cur = readme_from_index(), (ROOT / 'README.md').read_text()
    if cur != readme:
        if check_readme: sys.exit('FAIL: README.md is out of date with nbs/index.ipynb: run `make docs` and commit README.md')
        (ROOT / 'README.md').write_text(readme)
        print('README.md regenerated from nbs/index.ipynb')
    print(f'site built in {SITE.relative_to(ROOT)}/ ({sum(1 for _ in SITE.rglob("*.html"))} pages)')
    probs = link_problems() if warn_links else []
    if probs: print(f'warning: {len(probs)} link problems (`make docs-check` fails on them):\n  ' + '\n  '.join(probs))


# ---------------------------------------------------------------- check in Chromium
# Injected into every page the check serves (before </body>): once MathJax has typeset the page (or, without MathJax,
# after load), it measures what only a browser knows (layout, decoded images, MathJax's own errors, the text a reader
# sees) and writes it as JSON into <meta name="efm-check">, which `--dump-dom` returns.
CHECK_JS = r"""
(function () {
  'use strict';
  var done = false, signals = {'parse error': 0, 'undefined control sequence': 0, 'processing error': 0};
  var SKIP = 'pre, code, script, style, noscript, textarea, svg, math, .MathJax, .MathJax_CHTML, .mjx-chtml, ' +
             '.MathJax_Preview, .MathJax_Display, .MJX_Assistive_MathML, mjx-container, .clipboard-copy-txt';
  var OUTPUT = '.jp-OutputArea, .cell-output, .jp-MarkdownCell';
  function cut(s, n) { s = String(s).replace(/\s+/g, ' ').trim(); return s.length > n ? s.slice(0, n) + '...' : s; }
  function visible(el) { return el.checkVisibility ? el.checkVisibility({visibilityProperty: true}) : el.getClientRects().length > 0; }
  function longest(t) { return t.split('\n').reduce(function (a, b) { return b.length > a.length ? b : a; }, ''); }
  function math(r) {
    var MJ = window.MathJax, errs = [];
    r.mathjax_signals = signals; r.math_errors = errs;
    if (!(MJ && MJ.Hub && MJ.Hub.getAllJax)) { r.math_count = 0; return; }
    var jax = MJ.Hub.getAllJax(); r.math_count = jax.length;
    jax.forEach(function (j) {            // noErrors/noUndefined turn errors into merror / red mtext nodes
      (function walk(n) {
        if (!n || typeof n !== 'object') return;
        if (n.type === 'merror') errs.push('TeX error in: ' + cut(j.originalText, 120));
        else if (n.type === 'mtext' && n.mathcolor === 'red' && /^\\/.test((n.data || []).map(function (c) { return (c.data || []).join(''); }).join('')))
          errs.push('undefined macro in: ' + cut(j.originalText, 120));
        else (n.data || []).forEach(walk);
      })(j.root);
    });
    document.querySelectorAll('.MathJax_Error, .merror, .mjx-merror, mjx-merror, .noError').forEach(function (e) { errs.push('error element: ' + cut(e.textContent, 120)); });
  }
  function code(r) {
    var defs = {}, dirs = [], n = 0;
    document.querySelectorAll('pre').forEach(function (pre) {
      if (pre.closest(OUTPUT) || !visible(pre)) return;
      n++;
      var t = pre.textContent, m, re = /^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)/gm;
      while ((m = re.exec(t))) defs[m[1] + ' ' + m[2]] = 1;
      t.split('\n').forEach(function (l) { if (/^\s*#\s*\|/.test(l)) dirs.push(cut(l, 100)); });
    });
    r.code_blocks = n; r.defs = Object.keys(defs); r.code_directives = dirs;
  }
  function clipped(r) {
    var bad = [], vw = document.documentElement.clientWidth;
    document.querySelectorAll('pre, code').forEach(function (el) {
      if (el.tagName === 'CODE' && el.closest('pre')) return;
      var cs = getComputedStyle(el), ox = cs.overflowX, oy = cs.overflowY, why = null;
      if ((el.tagName === 'CODE' && cs.display.indexOf('inline') === 0) || !visible(el)) return;
      if (el.scrollWidth > el.clientWidth + 1 && ox !== 'auto' && ox !== 'scroll')
        why = 'content ' + (el.scrollWidth - el.clientWidth) + 'px wider than its box (overflow-x: ' + ox + ')';
      else if (el.scrollHeight > el.clientHeight + 1 && (oy === 'hidden' || oy === 'clip'))
        why = 'content ' + (el.scrollHeight - el.clientHeight) + 'px taller than its box (overflow-y: ' + oy + ')';
      else {
        var right = el.getBoundingClientRect().right;
        for (var a = el.parentElement; a && !why; a = a.parentElement) {
          var ax = getComputedStyle(a).overflowX;
          if (ax === 'auto' || ax === 'scroll') break;          // that box scrolls: the block can be reached
          if ((ax === 'hidden' || ax === 'clip') && right > a.getBoundingClientRect().left + a.clientLeft + a.clientWidth + 1)
            why = 'box cut off by <' + a.tagName.toLowerCase() + ' class="' + cut(a.className, 40) + '"> (overflow-x: ' + ax + ')';
        }
        if (!why && right > vw + 1) why = 'box runs ' + Math.round(right - vw) + 'px past the page width';
      }
      if (why) bad.push(why + ': ' + cut(longest(el.textContent), 90));
    });
    r.clipped = bad;
  }
  function images(r) {
    r.images = [];
    Array.prototype.forEach.call(document.images, function (img) {
      if (!img.complete || img.naturalWidth === 0) r.images.push(cut(img.getAttribute('src') || '(no src)', 80) + (img.alt ? ' (alt: ' + cut(img.alt, 40) + ')' : ''));
    });
    r.image_count = document.images.length;
  }
  function prose(r) {
    var groups = new Map(), ok = new Map(), tw = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), t;
    while ((t = tw.nextNode())) {
      var p = t.parentElement;
      if (!p || !t.data.trim()) continue;
      if (!ok.has(p)) ok.set(p, !p.closest(SKIP) && visible(p));
      if (!ok.get(p)) continue;
      var b = p;                            // the text of one block (paragraph, cell, list item) is read together
      while (b !== document.body && b.parentElement && getComputedStyle(b).display.indexOf('inline') === 0) b = b.parentElement;
      groups.set(b, (groups.get(b) || '') + t.data);
    }
    var tex = [], dirs = [], TEX = /\$\$|\$[^$\n]+\$|\\(?:begin|end)\{|\\[()[\]]|\\[A-Za-z]{2,}/g;
    groups.forEach(function (s) {
      var m, hits = [], at = -1; TEX.lastIndex = 0;
      while ((m = TEX.exec(s))) { if (at < 0) at = m.index; if (hits.indexOf(m[0]) < 0) hits.push(m[0]); }
      if (hits.length && tex.length < 20) tex.push(hits.slice(0, 5).join(' ') + ' in: ' + cut(s.slice(Math.max(0, at - 40), at + 100), 140));
      m = /#\s*\|/.exec(s);
      if (m && dirs.length < 20) dirs.push(cut(s.slice(Math.max(0, m.index - 20), m.index + 80), 120));
    });
    r.raw_tex = tex; r.prose_directives = dirs;
  }
  function network(r) {
    r.network = performance.getEntriesByType('resource').map(function (e) { return e.name; })
      .filter(function (u) { return !/^(data|blob|about):/.test(u) && u.indexOf(location.origin + '/') !== 0; }).slice(0, 10);
  }
  function finish(state) {
    if (done) return;
    done = true;
    var r = {state: state};
    [math, code, clipped, images, prose, network].forEach(function (f) {
      try { f(r); } catch (e) { (r.script_errors = r.script_errors || []).push(f.name + ': ' + String(e && e.stack || e)); }
    });
    var m = document.createElement('meta'); m.name = 'efm-check'; m.content = JSON.stringify(r);
    document.head.appendChild(m);
  }
  var MJ = window.MathJax;
  if (MJ && MJ.Hub && MJ.Hub.Register) {
    Object.keys(signals).forEach(function (k) {
      var name = k === 'processing error' ? 'Math Processing Error' : 'TeX Jax - ' + k;
      MJ.Hub.Register.MessageHook(name, function () { signals[k]++; });
    });
    MJ.Hub.Register.StartupHook('End', function () { MJ.Hub.Queue(function () { setTimeout(function () { finish('typeset'); }, 0); }); });
  } else if (MJ && MJ.startup && MJ.startup.promise) {          // MathJax 3 (Quarto's)
    MJ.startup.promise.then(function () { finish('typeset'); });
  } else window.addEventListener('load', function () { setTimeout(function () { finish('no MathJax'); }, 500); });
  window.addEventListener('load', function () { setTimeout(function () { finish('MathJax did not finish'); }, 15000); });
})();
"""


def _serve(root: Path, inject: str = ''):
    "Serve `root` on a free local port; `.html` pages get `inject` as a script before </body>. Returns (server, 404s)."
    missing = []
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def send_error(self, code, *a, **kw):
            if code == 404 and not self.path.startswith('/favicon.ico'): missing.append((self.path, self.headers.get('Referer') or ''))
            super().send_error(code, *a, **kw)
        def do_GET(self):
            f = Path(self.translate_path(self.path))
            if not (inject and f.suffix == '.html' and f.is_file()): return super().do_GET()
            body = f.read_bytes()
            i, tag = body.rfind(b'</body>'), b'<script>' + inject.encode() + b'</script>'
            body = body[:i] + tag + body[i:] if i >= 0 else body + tag
            self.send_response(200)
            self.send_header('Content-Type', 'text/html; charset=utf-8'); self.send_header('Content-Length', str(len(body)))
            self.end_headers(); self.wfile.write(body)
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, missing


def chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe: return exe
    print('chromium not found: installing Debian packages chromium and chromium-driver', flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    run(['apt-get', 'update', '-qq'], env=env)
    run(['apt-get', 'install', '-y', '-qq', 'chromium', 'chromium-driver'], env=env)
    return shutil.which('chromium')


def render(exe, url, shot):
    "The DOM after scripts ran (MathJax typesets on load) and a 1280-wide screenshot: one Chromium run, two if needed."
    shot.parent.mkdir(parents=True, exist_ok=True); shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as prof:
        base = [exe, *CHROMIUM_FLAGS, f'--user-data-dir={prof}', '--virtual-time-budget=20000', '--window-size=1280,1400']
        try:
            dom = subprocess.run(base + ['--dump-dom', f'--screenshot={shot}', url], capture_output=True, text=True, timeout=180).stdout
            if not shot.exists(): subprocess.run(base + [f'--screenshot={shot}', url], capture_output=True, timeout=180)
        except subprocess.TimeoutExpired: return ''  # check_page reports the page as not loaded
    return dom


def exports_bodies(nb: Path):
    "The code of a notebook's `#| exports` cells (the cells whose source the page shows), directives taken out."
    for c in json.loads(nb.read_text())['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] != 'code': continue
        d, body = directives(src)
        if any(k.split()[0] == 'exports' for k in d if k.split()): yield body


def exported_defs(nb: Path):
    "The `def`/`class` names defined in a notebook's `#| exports` cells (the cells whose source the page shows)."
    names = []
    for body in exports_bodies(nb):
        try: found = [(('class' if isinstance(n, ast.ClassDef) else 'def'), n.name) for n in ast.walk(ast.parse(body))
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        except SyntaxError: found = re.findall(r'^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)', body, re.M)
        names += [f'{k} {n}' for k, n in found if f'{k} {n}' not in names]
    return names


MATH_SRC = re.compile(r'\$[^$]+\$|\\begin\{|\\\(|\\\[')


def check_page(dom: str, pg, shot: Path):
    "What is wrong with one rendered page: a list of reasons (empty when it passes)."
    m = re.search(r'<meta name="efm-check" content="([^"]*)"', dom)
    if not m: return ['the check script reported nothing (page did not load or the script failed)']
    r, bad = json.loads(unescape(m.group(1))), []
    t = re.search(r'<title>(.*?)</title>', dom, re.S)
    want = pg['title'] if pg else None
    if not (t and t.group(1).strip() and (want is None or want in unescape(t.group(1)))): bad.append(f'title {t and t.group(1)!r} lacks {want!r}')
    if not re.search(r'<h[12][^>]*>', dom): bad.append('no <h1>/<h2> heading')
    has_math = pg and any(c['cell_type'] == 'markdown' and MATH_SRC.search(c['source']) for c in pg['page']['cells'])
    if has_math and not re.search(r'class="[^"]*(?:mjx-chtml|MathJax_CHTML)|<mjx-container', dom): bad.append('math in the notebook but no rendered equation')
    if has_math and r['state'] != 'typeset': bad.append(f"MathJax: {r['state']}")
    sig = {k: n for k, n in r.get('mathjax_signals', {}).items() if n}
    if sig: bad.append('MathJax signalled ' + ', '.join(f'{n} {k}' for k, n in sig.items()))
    bad += [f'MathJax: {e}' for e in r.get('math_errors', [])]
    bad += [f'TeX left unrendered: {s!r}' for s in r.get('raw_tex', [])]
    bad += [f'raw #| directive in code: {s!r}' for s in r.get('code_directives', [])]
    bad += [f'raw #| directive in text: {s!r}' for s in r.get('prose_directives', [])]
    bad += [f'code cut off: {s}' for s in r.get('clipped', [])]
    bad += [f'broken image: {s}' for s in r.get('images', [])]
    bad += [f'fetches from the network: {u}' for u in r.get('network', [])]
    bad += [f'check script error: {e}' for e in r.get('script_errors', [])]
    if pg and pg['nb'].parent == Path('.') and pg['nb'].name != 'index.ipynb':
        if not r.get('code_blocks'): bad.append(f"no code block shown (chapter {pg['nb']})")
        shown = set(r.get('defs', []))
        bad += [f"`{d}` from an #| exports cell of {pg['nb']} not shown" for d in exported_defs(ROOT / 'nbs' / pg['nb']) if d not in shown]
    if not (shot.exists() and shot.stat().st_size > 10_000): bad.append('no screenshot')
    return list(dict.fromkeys(bad))


def shown_sources(nb: Path):
    "The public top-level `def`/`class` names (and `@patch` methods, by their bare name) of a notebook's `#| exports` cells."
    names = []
    for body in exports_bodies(nb):
        try: tree = ast.parse(body)
        except SyntaxError: continue
        names += [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and (n.name[0] != '_' or n.name[:2] == '__')]
    return names


def doubled_signatures(pages):
    """'page (notebook): ...' for each generated `show_doc` of a name whose source the page already shows (an `#| exports`
    cell): the reader would see its signature twice. A hidden `#| eval: false` cell naming it in `show_doc(...)` stops nbdev
    from adding one."""
    bad = []
    for pg in pages:
        mine = set(shown_sources(ROOT / 'nbs' / pg['nb']))
        for c in pg['page']['cells']:
            m = re.fullmatch(r'\s*show_doc\((?:\w+\.)?(\w+)\)\s*', c['source']) if c['cell_type'] == 'code' else None
            if m and m.group(1) in mine: bad.append(f"{pg['html']} (nbs/{pg['nb'].as_posix()}): `{m.group(1)}` shows its source and a generated signature (name it in the hidden `#| eval: false` show_doc cell)")
    return bad


def link_problems(pages=None):
    """The check's static pass (`links.site_problems`): 'page (notebook): reason' for each raw markdown link, dead link
    or #anchor, absolute link to our own site, and (on the mkdocs site) previous/next link off the nav order."""
    pages = site_pages() if pages is None else pages
    nb = {pg['html']: f"nbs/{pg['nb'].as_posix()}" for pg in pages}
    order = [pg['html'] for pg in pages] if (SITE / 'search' / 'search_index.json').exists() else None  # Quarto: no footer
    return [f'{p} ({nb[p]}): {r}' if p in nb else f'{p}: {r}' for p, r in links.site_problems(SITE, DOC_URL, order)]


def check(browser=True):
    pages = {pg['html']: pg for pg in site_pages()}
    htmls = links.content_pages(SITE)
    if not htmls: sys.exit(f'docs-check failed: no pages in {SITE.relative_to(ROOT)}/ (build the site first)')
    fails = [f'{h}: notebook {pg["nb"]} has no page on the site' for h, pg in pages.items() if h not in htmls]
    t0 = time.time()
    static = link_problems(list(pages.values())) + doubled_signatures(list(pages.values()))
    print(f'links: {len(static)} problems in {len(htmls)} pages ({time.time() - t0:.1f}s, no browser)'
          + ''.join(f'\n  FAIL {b}' for b in static), flush=True)
    fails += static
    if browser: fails += browser_check(htmls, pages)
    if fails: sys.exit(f'docs-check failed ({len(fails)} problems):\n  ' + '\n  '.join(fails))
    print(f'docs-check passed: {len(htmls)} pages' + (f'; screenshots in {(SITE / "screenshots").relative_to(ROOT)}/' if browser else ''))


def browser_check(htmls, pages):
    "Every page in headless Chromium (see `check_page`): 'page: reason' for each problem."
    exe, fails = chromium(), []
    shutil.rmtree(SITE / 'screenshots', ignore_errors=True)
    httpd, missing = _serve(SITE, CHECK_JS)
    port, t0, failed = httpd.server_address[1], time.time(), 0
    try:
        for h in htmls:
            t1, shot = time.time(), SITE / 'screenshots' / Path(h).with_suffix('.png')
            bad = check_page(render(exe, f'http://127.0.0.1:{port}/{h}', shot), pages.get(h), shot)
            bad += [f'missing file {p}' for p, ref in missing if ref.endswith('/' + h)]
            print(f"  {'ok  ' if not bad else 'FAIL'} {h} ({time.time() - t1:.0f}s)" + ''.join(f'\n         {b}' for b in bad), flush=True)
            fails += [f'{h}: {b}' for b in bad]; failed += bool(bad)
    finally:
        httpd.shutdown()
    fails += [f'missing file {p} (asked for by {ref or "no page"})' for p, ref in missing if not any(ref.endswith('/' + h) for h in htmls)]
    print(f'Chromium: {failed} of {len(htmls)} pages failing, {time.time() - t0:.0f}s', flush=True)
    return fails


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help='after building, check the links and open every page in headless Chromium')
    ap.add_argument('--check-only', action='store_true', help='check the site already in _docs/ without building it')
    ap.add_argument('--static', action='store_true', help='with --check or --check-only: check the links only, no browser')
    ap.add_argument('--no-quarto', action='store_true', help='use the offline renderer even where Quarto is installed')
    a = ap.parse_args()
    if not a.check_only: build(use_quarto=not a.no_quarto, check_readme=a.check, warn_links=not a.check)
    if a.check or a.check_only: check(browser=not a.static)
