/** Control-plane tables of the tenants module. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface TenantsTables {}
