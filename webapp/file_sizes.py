"""File sizes in Gradio's file lists written as the app writes sizes (engine.weights.human_size): whole bytes.

Gradio's File component writes every size with one decimal, bytes too ("231.0 B" for scores.csv); this page
script, run in the page's head, rewrites such a size to "231 B" whenever a file list is drawn or redrawn. Sizes
from a kilobyte up keep Gradio's one decimal.
"""

from __future__ import annotations

WHOLE_BYTES_JS = r"""
(() => {
    const fractionOfAByte = /^(\d+)\.0(\s)B$/;  // Gradio's "231.0&nbsp;B"
    const wholeBytes = () => {
        for (const link of document.querySelectorAll("td.download a")) {
            for (const node of link.childNodes) {
                const match = node.nodeType === Node.TEXT_NODE && node.nodeValue.match(fractionOfAByte);
                if (match) node.nodeValue = `${match[1]}${match[2]}B`;
            }
        }
    };
    new MutationObserver(wholeBytes).observe(document.documentElement, {childList: true, subtree: true});
})();
"""
