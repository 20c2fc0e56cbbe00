"""Policy decisions: the policy bundle, the decision cache and the decision record."""
