"""The SOC 2 evidence report: `sealtrail report` gathers facts from the trail and renders one HTML page.

facts (what the page states, from DuckDB over the trail) -> build (verify, then gather one window)
-> charts (inline SVG) and page (Jinja2 template) -> a self-contained file that loads nothing.
"""
