/** Control-plane tables of the fleet module: database servers, tenant databases, tenants. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface FleetTables {}
