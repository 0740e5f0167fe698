#!/usr/bin/env python
"""Build the documentation site into `_docs/` and, with `--check`, open it in headless Chromium.

Where Quarto is installed this is nbdev's own `nbdev_docs`. Where it is not (Quarto has no wheel or Debian
package), the same notebooks go through nbdev's own processing (`nbdev_proc_nbs` -> `_proc/`: `show_doc`
rendered, hidden and exported cells handled, frontmatter extracted) and are rendered by mkdocs-material +
mkdocs-jupyter, with MathJax bundled from npm so the site needs no network. `README.md` is written from the
processed `index.ipynb` (what `nbdev_readme` does with Quarto).

Usage: build_docs.py [--check] [--no-quarto]
"""
import argparse, functools, http.server, json, os, re, shutil, socketserver, subprocess, sys, tempfile, threading
from pathlib import Path

import yaml

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


def _plain_markdown(o: dict) -> dict:
    "show_doc's markdown carries Pandoc attributes (`{target=...}`) that only Quarto understands: drop them."
    md = o.get('data', {}).get('text/markdown')
    if md is None: return o
    md = ''.join(md) if isinstance(md, list) else md
    return dict(o, data=dict(o['data'], **{'text/markdown': PANDOC_ATTRS.sub('', md)}))


def page_from_proc(nb: dict):
    "Turn one nbdev-processed notebook into a notebook mkdocs-jupyter renders as-is; returns (nb, title, out_name)."
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
            c['outputs'] = [_plain_markdown(o) for o in c.get('outputs', [])]
            if not body.strip() and not c.get('outputs'): continue
            c['metadata']['tags'] = tags
        else:
            c = dict(c, source=src)
        cells.append(c)
    return dict(nb, cells=cells), title, out


def write_pages():
    "Processed notebooks -> `.mkdocs/docs/*.ipynb` plus the nav in notebook order (index first)."
    shutil.rmtree(PAGES, ignore_errors=True); PAGES.mkdir(parents=True)
    nbs = sorted(PROC.rglob('*.ipynb'), key=lambda p: (len(p.relative_to(PROC).parts), p.name != 'index.ipynb', str(p)))
    nav = []
    for p in nbs:
        rel = p.relative_to(PROC)
        if any(part.startswith(('_', '.')) for part in rel.parts): continue
        page, title, out = page_from_proc(json.loads(p.read_text()))
        name = Path(out).with_suffix('.ipynb').name if out else rel.name
        dest = PAGES / rel.parent / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(page, indent=1))
        entry = {title or dest.stem: str(dest.relative_to(PAGES))}
        if rel.parent == Path('.'): nav.append(entry)
        else:
            sec = rel.parts[0].replace('_', ' ').title()
            grp = next((e for e in nav if sec in e and isinstance(e[sec], list)), None)
            if grp is None: grp = {sec: []}; nav.append(grp)
            grp[sec].append(entry)
    if (ROOT / 'nbs' / 'images').is_dir(): shutil.copytree(ROOT / 'nbs' / 'images', PAGES / 'images')  # pictures the notebooks link to
    return nav


def mkdocs_config(nav):
    cfg = dict(
        site_name='efm', site_description='Electrostatic Field Matching, derived and implemented',
        docs_dir=str(PAGES), site_dir=str(SITE), use_directory_urls=False, nav=nav,
        theme=dict(name='material', font=False, features=['navigation.sections', 'toc.follow', 'content.code.copy'],
                   palette=dict(primary='indigo')),
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
    skip = shutil.ignore_patterns('unpacked', '*.otf', '*.eot', '*.svg', 'png', 'imagefonts*')
    shutil.copytree(pkg, dest, ignore=skip)
    for html in SITE.rglob('*.html'):
        depth = len(html.relative_to(SITE).parts) - 1
        s = html.read_text()
        if MATHJAX_MARK in s:
            html.write_text(s.replace(MATHJAX_MARK, '../' * depth + 'assets/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe'))


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


def build(use_quarto=True, check_readme=False):
    if use_quarto and shutil.which('quarto'):
        run([BIN / 'nbdev_docs'])  # the real thing: Quarto renders _docs/ and README.md
        return
    proc_notebooks()
    nav = write_pages()
    shutil.rmtree(SITE, ignore_errors=True)
    run([BIN / 'mkdocs', 'build', '--quiet', '-f', mkdocs_config(nav)])
    bundle_mathjax()
    bad = offline_violations()
    if bad: sys.exit('FAIL: pages load resources from the network:\n  ' + '\n  '.join(bad))
    readme, cur = readme_from_index(), (ROOT / 'README.md').read_text()
    if cur != readme:
        if check_readme: sys.exit('FAIL: README.md is out of date with nbs/index.ipynb: run `make docs` and commit README.md')
        (ROOT / 'README.md').write_text(readme)
        print('README.md regenerated from nbs/index.ipynb')
    print(f'site built in {SITE.relative_to(ROOT)}/ ({sum(1 for _ in SITE.rglob("*.html"))} pages)')


# ---------------------------------------------------------------- check in Chromium
def _serve(root: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(root))
    httpd = socketserver.TCPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe: return exe
    print('chromium not found: installing Debian packages chromium and chromium-driver', flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    run(['apt-get', 'update', '-qq'], env=env)
    run(['apt-get', 'install', '-y', '-qq', 'chromium', 'chromium-driver'], env=env)
    return shutil.which('chromium')


def render(exe, url, shot=None):
    "The DOM after scripts ran (MathJax typesets on load), and optionally a screenshot."
    with tempfile.TemporaryDirectory() as prof:
        base = [exe, *CHROMIUM_FLAGS, f'--user-data-dir={prof}', '--virtual-time-budget=20000', '--window-size=1280,1400']
        dom = subprocess.run(base + ['--dump-dom', url], capture_output=True, text=True, timeout=120).stdout
        if shot: subprocess.run(base + [f'--screenshot={shot}', url], capture_output=True, timeout=120)
    return dom


def check():
    exe = chromium()
    httpd = _serve(SITE)
    port = httpd.server_address[1]
    fails = []
    pages = [('index.html', 'efm', 'screenshot-index.png'), ('field.html', 'The Coulomb field', 'screenshot-field.png')]
    try:
        for page, title, shot in pages:
            dom = render(exe, f'http://127.0.0.1:{port}/{page}', SITE / shot)
            t = re.search(r'<title>(.*?)</title>', dom, re.S)
            checks = {
                f'title contains {title!r}': bool(t and title in t.group(1)),
                'an <h1>/<h2> heading': bool(re.search(r'<h[12][^>]*>', dom)),
                'a rendered equation (MathJax output)': bool(re.search(r'class="[^"]*(?:mjx-chtml|MathJax_CHTML)', dom)),
                'no MathJax error': not re.search(r'class="(?:MathJax_Error|merror)"', dom),
                'no raw #| directive shown': '#| ' not in re.sub(r'<[^>]+>', '', dom),
                'screenshot saved': (SITE / shot).exists() and (SITE / shot).stat().st_size > 10_000,
            }
            for k, ok in checks.items():
                print(f"  {'ok  ' if ok else 'FAIL'} {page}: {k}")
                if not ok: fails.append(f'{page}: {k}')
    finally:
        httpd.shutdown()
    if fails: sys.exit('docs-check failed:\n  ' + '\n  '.join(fails))
    print(f'docs-check passed: {len(pages)} pages rendered in Chromium; screenshots in {SITE.relative_to(ROOT)}/')


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help='after building, open pages in headless Chromium')
    ap.add_argument('--no-quarto', action='store_true', help='use the offline renderer even where Quarto is installed')
    a = ap.parse_args()
    build(use_quarto=not a.no_quarto, check_readme=a.check)
    if a.check: check()
