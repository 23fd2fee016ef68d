"""Report stage: leaderboards as files and tables, and the self-contained HTML report."""

from ._html import build_report, write_html_report
from ._leaderboard import COLUMNS, fidelity_line, leaderboard_markdown, write_leaderboard

__all__ = ["COLUMNS", "build_report", "fidelity_line", "leaderboard_markdown", "write_html_report", "write_leaderboard"]
