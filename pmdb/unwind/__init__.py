"""Stack unwinding: Frame and StackTrace records, and the strategy loop that produces them."""
