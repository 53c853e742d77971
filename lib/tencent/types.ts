/** One call of CreateCloudPhoneInstancesStreamToken, in our own terms. */
export interface StreamTokenRequest {
  instanceIds: string[];
  deviceId: string;
  /** Sent upstream as `RenewalTime` (hours). */
  renewalHours: number;
}

/** One entry of the upstream `Tokens[]`, validated against the documented shape; unknown fields are dropped. */
export interface UpstreamStreamToken {
  InstanceId: string;
  DeviceId: string;
  Token: string;
  /** `YYYY-MM-DD HH:MM:SS`, Beijing time (UTC+8), no zone. */
  ExpireTime: string;
  SignalServer: { TCPAddr: string; WSAddr: string; WSSAddr: string };
  CoturnServers: Array<{ Addr: string; ISP: number }>;
}

export interface StreamTokenResult {
  tokens: UpstreamStreamToken[];
  /** Upstream `RequestId`: for our logs only, never returned to the caller. */
  requestId: string;
  attempts: number;
}

export interface StreamTokenClient {
  createStreamTokens(request: StreamTokenRequest): Promise<StreamTokenResult>;
}
