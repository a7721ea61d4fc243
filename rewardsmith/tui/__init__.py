"""Terminal user interfaces (Textual): ``rewardsmith rank``, where people rank candidates."""
