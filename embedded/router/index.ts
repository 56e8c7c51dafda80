// The development router: the roles of gorouter and the route-emitter on one machine.
export { createProxy, type Proxy, type ProxyOptions } from './proxy.js';
export { ROUTER_DEFAULTS, startRouter, type Router, type RouterOptions } from './server.js';
export { startRouteSync, type RouterBbs, type RouteSync, type RouteSyncOptions } from './sync.js';
export {
  CF_ROUTER_KEY,
  createRouteTable,
  endpointAddress,
  hostFromHeader,
  httpRoutesOf,
  InvalidRoutesError,
  isLoopbackAddress,
  isRoutable,
  normalizeHostname,
  routableInstanceOf,
  routableInstanceOfLrp,
  type HttpRoute,
  type RoutableInstance,
  type RouteEndpoint,
  type RouteTable,
  type RouteTableSnapshot,
} from './table.js';
