// The bundle's one export: mediasoup-client as the page's global `mediasoupClient`.
import * as mediasoupClient from 'mediasoup-client';

globalThis.mediasoupClient = mediasoupClient;
