"""Screenshot an HTML page (a search or duplicates report) in headless Chromium, to look at it.

    .venv/bin/python scripts/screenshot_html.py search.html search.png [--full_page]

Needs Playwright (``pip install -e .[report-check]``) and a Chromium binary; the system's
(``apt-get install chromium``, ``/usr/bin/chromium``) is used, so ``playwright install`` is not
needed. Prints how many images the page has and how many of them the browser could decode.
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", help="the .html file")
    parser.add_argument("png", help="the screenshot to write")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser binary")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--full_page", action="store_true", help="the whole page, not one screen")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto("file://" + os.path.abspath(args.page))
        page.screenshot(path=args.png, full_page=args.full_page)
        total, decoded = page.evaluate(
            "() => [document.images.length,"
            " [...document.images].filter(image => image.naturalWidth > 0).length]"
        )
        browser.close()
    print(f"{args.png}: {total} images on the page, {decoded} decoded")


if __name__ == "__main__":
    main()
