"""Discovery, the pure part: which remote objects a RayJobRefSet or RayClusterRefSet
matches, what its refs are named and look like, which to create and delete, and the
set's status. No kopf, no Kubernetes client, no HTTP: the controller's `refsets` module
feeds it listings and the refs it knows, and carries out its decisions."""
