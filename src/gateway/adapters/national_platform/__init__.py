"""The national public-service payment platform (Decision 31/2021/QĐ-TTg): wire, adapter, sandbox."""
