"""Collection partners (§12): banks, intermediaries, telcos and platforms that collect bills for the gateway's
billers, and the merchants that let them."""
