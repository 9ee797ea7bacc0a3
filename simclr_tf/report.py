"""Self-contained HTML pages of search results and near-duplicate groups, to open in a browser.

Every thumbnail is embedded in the page as a PNG ``data:`` URI, so the one ``.html`` file is
all there is to send or archive: it shows the images even where the image files are not.
Thumbnails are the images scaled down to at most :data:`THUMBNAIL_SIDE` pixels on their long
side (never up: small images are enlarged by the browser, with square pixels); a file that can
no longer be read is shown as a grey box with the reason.

    write_search_report("search.html", [(query_path, [(match_path, similarity), ...]), ...])
    write_duplicates_report("duplicates.html", groups, paths)

:mod:`simclr_tf.search` and :mod:`simclr_tf.duplicates` write them with ``--report``.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from datetime import datetime, timezone

from simclr_tf import atomic
from simclr_tf.embed import display_path

__all__ = ["THUMBNAIL_SIDE", "thumbnail_uri", "write_duplicates_report", "write_search_report"]

THUMBNAIL_SIDE = 128
MAX_GROUPS_SHOWN = 200

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.note { color: #666; margin: 0 0 20px; font-size: 13px; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px 14px;
          margin: 0 0 16px; }
h2 { font-size: 14px; margin: 0 0 10px; font-weight: 600; word-break: break-all; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; width: 120px; text-align: center; }
figure img, figure .missing { width: 96px; height: 96px; object-fit: contain;
          image-rendering: pixelated; background: #eee; border: 1px solid #ccc; }
figure.query img { border: 2px solid #1a73e8; }
figure .missing { display: flex; align-items: center; justify-content: center; font-size: 10px;
          color: #777; margin: 0 auto; }
figcaption { font-size: 11px; color: #444; margin-top: 3px; word-break: break-all;
          line-height: 1.25; }
figcaption b { color: #111; font-size: 12px; }
.divider { width: 1px; align-self: stretch; background: #ddd; margin: 0 4px; }
.groups { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.groups section { margin: 0; }
"""


def thumbnail_uri(path: str, side: int = THUMBNAIL_SIDE) -> str | None:
    """A ``data:image/png;base64,...`` thumbnail of an image file, or None if it is unreadable.

    Args:
        path: the image file.
        side: the longest side of the thumbnail; smaller images keep their size.
    """
    import tensorflow as tf

    try:
        raw = tf.io.read_file(os.fsencode(path))
        image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError):
        return None
    height, width = int(image.shape[0]), int(image.shape[1])
    scale = side / max(height, width)
    if scale < 1:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = tf.image.resize(image, size, antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    png = tf.io.encode_png(image).numpy()
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(path: str, caption: str = "", css_class: str = "") -> str:
    uri = thumbnail_uri(path)
    shown = display_path(path)
    # The file and its folder: the folder is often the class ("cat/0049.png").
    name = html.escape(
        os.path.join(os.path.basename(os.path.dirname(shown)), os.path.basename(shown))
    )
    title = html.escape(shown, quote=True)
    picture = (
        f'<img src="{uri}" alt="{name}" title="{title}">'
        if uri
        else f'<div class="missing" title="{title}">unreadable</div>'
    )
    caption = f"<figcaption>{caption + '<br>' if caption else ''}{name}</figcaption>"
    return f'<figure class="{css_class}">{picture}{caption}</figure>'


def _page(title: str, note: str, sections: Sequence[str]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="note">{html.escape(note)} &middot; {stamp}</p>'
        + "".join(sections)
        + "</body></html>\n"
    )


def write_search_report(
    path: str | os.PathLike,
    results: Sequence[tuple[str, Sequence[tuple[str, float]]]],
    title: str = "Search results",
    note: str = "",
) -> str:
    """Writes a page with each query and its neighbours, most similar first.

    Args:
        path: the ``.html`` file to write (atomically).
        results: ``(query path, [(neighbour path, cosine similarity), ...])`` per query.
        title: the page's heading.
        note: a line under it (how the search was done).

    Returns:
        The file written, as an absolute path.
    """
    sections = []
    for query, matches in results:
        figures = [_figure(query, "<b>query</b>", "query"), '<div class="divider"></div>']
        figures += [
            _figure(match, f"<b>{rank}.</b> {score:.3f}" + (" (itself)" if match == query else ""))
            for rank, (match, score) in enumerate(matches, start=1)
        ]
        heading = html.escape(display_path(query))
        sections.append(
            f'<section><h2>{heading}</h2><div class="row">{"".join(figures)}</div></section>'
        )
    return _write(path, _page(title, note or f"{len(results)} queries", sections))


def write_duplicates_report(
    path: str | os.PathLike,
    groups: Sequence[dict],
    title: str = "Near-duplicates",
    note: str = "",
    max_groups: int = MAX_GROUPS_SHOWN,
) -> str:
    """Writes a page with each group of near-duplicate images, largest groups first.

    Args:
        path: the ``.html`` file to write (atomically).
        groups: as :func:`simclr_tf.duplicates.find_duplicates` returns them: dicts with
            ``paths``, ``min_similarity`` and ``max_similarity``.
        title: the page's heading.
        note: a line under it (threshold, index).
        max_groups: groups shown at most (the page says how many were left out).

    Returns:
        The file written, as an absolute path.
    """
    cards = []
    for number, group in enumerate(groups[:max_groups], start=1):
        figures = "".join(_figure(member) for member in group["paths"])
        low, high = f"{group['min_similarity']:.3f}", f"{group['max_similarity']:.3f}"
        similarity = low if low == high else f"{low} to {high}"
        heading = f"{number}. {len(group['paths'])} images, similarity {similarity}"
        cards.append(f'<section><h2>{heading}</h2><div class="row">{figures}</div></section>')
    sections = [f'<div class="groups">{"".join(cards)}</div>'] if cards else []
    if len(groups) > max_groups:
        sections.append(
            f'<p class="note">{len(groups) - max_groups} more group(s) not shown; the JSON '
            "report lists them all.</p>"
        )
    if not groups:
        sections.append("<p>No near-duplicates at this threshold.</p>")
    return _write(path, _page(title, note or f"{len(groups)} groups", sections))


def _write(path: str | os.PathLike, page: str) -> str:
    target = os.path.abspath(os.fspath(path))
    atomic.write_text(target, page)
    return target
