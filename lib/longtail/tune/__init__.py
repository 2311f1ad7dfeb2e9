"""Ray Tune search over imbalance strategies and losses, with a leaderboard users can trust."""
