"""Report stage: leaderboards as files and tables."""

from ._leaderboard import COLUMNS, leaderboard_markdown, write_leaderboard

__all__ = ["COLUMNS", "leaderboard_markdown", "write_leaderboard"]
