"""Identity and access: who is calling (admin user, identities, repository-scoped tokens,
anonymous), what they may do (roles, scope maps), and the tokens that carry it.
Never speaks HTTP; the API layer asks it questions and renders the answers."""
