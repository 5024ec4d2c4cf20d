"""The console's pages, one module each: what a page reads from the store and hands its template."""
