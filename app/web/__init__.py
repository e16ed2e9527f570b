"""Pages and files for browsers: the cookie banner that websites embed, offline API docs, the demo site."""
